//! The dashboard (plain HTML, JS and CSS from `ui/`) and the browsable API page
//! (`control/apidocs/`), compiled into the binary so the control plane is one file to
//! deploy and the pages always match the API they talk to.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

/// One embedded file.
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    /// What it is, for the API description.
    pub summary: &'static str,
    body: &'static str,
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Every file the dashboard and the API page are made of; the routes and the API
/// description both come from this table.
pub const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: HTML,
        summary: "The dashboard page",
        body: include_str!("../../ui/index.html"),
    },
    Asset {
        path: "/ui/app.js",
        content_type: JS,
        summary: "Dashboard script",
        body: include_str!("../../ui/app.js"),
    },
    Asset {
        path: "/ui/charts.js",
        content_type: JS,
        summary: "Dashboard charts script",
        body: include_str!("../../ui/charts.js"),
    },
    Asset {
        path: "/ui/probes.js",
        content_type: JS,
        summary: "Dashboard test-head (probe) cards script",
        body: include_str!("../../ui/probes.js"),
    },
    Asset {
        path: "/ui/style.css",
        content_type: CSS,
        summary: "Dashboard style sheet",
        body: include_str!("../../ui/style.css"),
    },
    // uPlot, vendored (see `ui/vendor/README.md`): the charts work offline.
    Asset {
        path: "/ui/vendor/uPlot.iife.min.js",
        content_type: JS,
        summary: "The dashboard's chart library (uPlot, MIT), vendored",
        body: include_str!("../../ui/vendor/uPlot.iife.min.js"),
    },
    Asset {
        path: "/ui/vendor/uPlot.min.css",
        content_type: CSS,
        summary: "The chart library's style sheet",
        body: include_str!("../../ui/vendor/uPlot.min.css"),
    },
    Asset {
        path: "/api/v1/docs",
        content_type: HTML,
        summary: "This API, browsable: every operation with its parameters and schemas, and a form to call it",
        body: include_str!("../apidocs/index.html"),
    },
    Asset {
        path: "/api/v1/docs/docs.js",
        content_type: JS,
        summary: "The API page's script",
        body: include_str!("../apidocs/docs.js"),
    },
    Asset {
        path: "/api/v1/docs/docs.css",
        content_type: CSS,
        summary: "The API page's style sheet",
        body: include_str!("../apidocs/docs.css"),
    },
];

/// Routes serving the page and its assets.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    ASSETS.iter().fold(Router::new(), |router, asset| {
        router.route(
            asset.path,
            get(move || serve(asset.content_type, asset.body)),
        )
    })
}

async fn serve(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}
