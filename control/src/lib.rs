//! reflector-control: the control plane of the reflector. It supervises one `reflector`
//! worker process per interface and serves a REST API, Prometheus metrics, a live
//! event stream and a web dashboard over them.

#![forbid(unsafe_code)]

pub mod api;
pub mod auth;
pub mod config;
pub mod events;
pub mod guard;
pub mod history;
pub mod lab;
pub mod metrics;
pub mod probes;
pub mod supervisor;
pub mod ui;
pub mod views;
