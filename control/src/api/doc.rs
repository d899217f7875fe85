//! The OpenAPI description of the router, generated: every operation from its
//! handler's `#[utoipa::path]` annotation, every schema from the Rust type the API
//! reads or writes (`utoipa::ToSchema`, derived in this crate and, behind their
//! `openapi` feature, in `dataplane` and `settings`). What all operations share is
//! added here: the bearer token, the Host guard's 403, and the embedded files.

use super::{history, probes, update};
use crate::ui;
use std::sync::LazyLock;
use utoipa::openapi::path::{
    HttpMethod, Operation, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::Required;
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "reflector-control",
        description = "Supervises reflector workers (one per interface) and test-head probes. \
            Reads are open; anything that changes state needs `Authorization: Bearer TOKEN`. \
            Every error is {\"error\": \"...\"} saying what was wrong. Browsable at /api/v1/docs."
    ),
    paths(
        super::list,
        super::create,
        super::show,
        update::replace,
        update::patch,
        super::remove,
        super::start,
        super::stop,
        super::stats,
        super::streams,
        history::history,
        probes::list,
        probes::create,
        probes::show,
        probes::remove,
        probes::start,
        probes::stop,
        super::events,
        super::reload,
        super::openapi,
        super::health,
        super::prometheus,
    ),
    modifiers(&Shared),
    tags(
        (name = "reflectors", description = "Reflector workers, their statistics and the config file"),
        (name = "probes", description = "Test heads sending to a reflector"),
        (name = "meta", description = "Health, metrics and this description"),
        (name = "ui", description = "The dashboard and this page: files embedded in the binary"),
    )
)]
struct ApiDoc;

/// The description as served, built once.
static OPENAPI: LazyLock<String> = LazyLock::new(|| {
    ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI description serializes")
});

/// `GET /api/v1/openapi.json`.
pub fn openapi_json() -> &'static str {
    &OPENAPI
}

/// Paths any Host may read (see [`crate::guard`]): no 403 there.
const OPEN_PATHS: [&str; 2] = ["/metrics", "/health"];

/// What every operation shares, added to the generated paths.
struct Shared;

impl Modify for Shared {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        for asset in ui::ASSETS {
            let name = match asset.path.trim_start_matches('/') {
                "" => "index".to_owned(),
                path => path.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
            };
            let operation = OperationBuilder::new()
                .operation_id(Some(name))
                .summary(Some(asset.summary))
                .tag("ui")
                .response(
                    "200",
                    ResponseBuilder::new()
                        .description("The file")
                        .content(asset.content_type, ContentBuilder::new().build()),
                );
            openapi
                .paths
                .add_path_operation(asset.path, vec![HttpMethod::Get], operation.build());
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            let guarded = !OPEN_PATHS.contains(&path.as_str());
            let id = ID_PARAMETERS
                .iter()
                .find(|(prefix, _)| path.starts_with(prefix))
                .map(|(_, description)| *description);
            for operation in operations(item) {
                if let Some(description) = id {
                    identify(operation, description);
                }
                json_body(operation);
                // Handler names repeat across modules (`list`, `stop`...): qualify them
                // with the tag, so every operation id is unique as OpenAPI requires.
                if let (Some(id), Some(tag)) = (
                    &operation.operation_id,
                    operation.tags.as_ref().and_then(|t| t.first()),
                ) {
                    operation.operation_id = Some(format!("{tag}_{id}"));
                }
                let needs_token = operation.security.as_ref().is_some_and(|s| !s.is_empty());
                let responses = &mut operation.responses.responses;
                if needs_token {
                    responses.insert(
                        "401".into(),
                        error("Missing or wrong bearer token; the message says where the token is")
                            .into(),
                    );
                }
                if guarded {
                    responses.insert("403".into(), error("The request's Host is not a name this control plane answers to (a guard against DNS rebinding): use an IP address or localhost, or add the name to allowed_hosts").into());
                }
            }
        }
    }
}

/// What the `{id}` of each kind of resource is.
const ID_PARAMETERS: [(&str, &str); 2] = [
    (
        "/api/v1/reflectors/{id}",
        "Reflector id: the interface name, or IFACE@NETNS for a reflector in a network \
         namespace (NETNS:IFACE is still accepted)",
    ),
    ("/api/v1/probes/{id}", "Probe id"),
];

/// An operation on one resource: its `id` path parameter and the 404 for an unknown
/// one, unless the annotation says them already.
fn identify(operation: &mut Operation, description: &str) {
    let parameters = operation.parameters.get_or_insert_with(Vec::new);
    if !parameters.iter().any(|p| p.name == "id") {
        parameters.insert(
            0,
            ParameterBuilder::new()
                .name("id")
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some(description))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .build(),
        );
    }
    operation
        .responses
        .responses
        .entry("404".into())
        .or_insert_with(|| error("Unknown id").into());
}

/// An operation that requires a JSON body refuses another content type and JSON of
/// the wrong shape (axum's `Json`), unless the annotation says more precisely.
fn json_body(operation: &mut Operation) {
    let required = operation.request_body.as_ref().is_some_and(|body| {
        matches!(body.required, Some(Required::True))
            && body.content.keys().any(|t| t.ends_with("json"))
    });
    if required {
        let responses = &mut operation.responses.responses;
        responses.entry("415".into()).or_insert_with(|| {
            error("The body is not JSON (Content-Type: application/json)").into()
        });
        responses.entry("422".into()).or_insert_with(|| {
            error("JSON of the wrong shape: an unknown key, a missing one or a wrong type").into()
        });
    }
}

/// The operations of one path.
fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// A response with the `Error` body.
fn error(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Error")))
                .build(),
        )
        .build()
}
