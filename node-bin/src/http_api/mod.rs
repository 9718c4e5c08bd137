//! The client HTTP API of docs/API.md, on actix-web.
//!
//! Handlers speak to the node only through `raft-proto` messages: `Propose`, `Read` and
//! `GetStatus` to the consensus actor, `Query` to the applier for `?consistency=local` and
//! `TakeSnapshot` for `POST /v1/snapshot`; `GET /v1/snapshot` reads the node's `SnapshotStore`.
//! Tests serve the same routes against small fake actors.
//!
//! # Layout
//!
//! - [`api_state`]: `ApiState`, what every handler holds (recipients, limits, forwarder).
//! - [`handlers`]: one function per route.
//! - [`api_error`]: `ApiError` and its status codes (the 503-versus-504 rule).
//! - [`kv_key`]: key parsing from the request path.
//! - [`list_route`]: `GET /v1/list`, pages of the keys under a prefix.
//! - [`forwarder`]: relaying a follower's request to the leader.
//! - `/metrics` and `/version`: [`crate::metrics`] (through `prometheus-client`) and
//!   [`crate::build_info`].
//! - [`snapshot_routes`]: `POST`/`GET /v1/snapshot` and the snapshot figures of status and
//!   metrics.
//! - [`member_routes`]: the membership admin API (`/v1/members`, `/v1/leader/transfer`).
//! - [`same_thread_server`]: serving the `App` on the calling thread (the node's System
//!   thread), instead of actix-web's worker threads.
//!
//! `GET /v1/internal/checkpoints` is for the nodes themselves: the consistency check
//! ([`crate::consistency`]) fetches it from every peer.

pub mod api_error;
pub mod api_state;
pub mod forwarder;
pub mod handlers;
pub mod kv_key;
pub mod list_route;
pub mod member_routes;
pub mod query;
pub mod same_thread_server;
pub mod snapshot_routes;

pub use api_error::ApiError;
pub use api_state::{ApiCounters, ApiPorts, ApiState};

use actix_web::dev::Service;
use actix_web::web;
use tracing::Instrument;

/// Registers every route of the client API on an actix-web `App`.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        // The key routes match by prefix (a regex-free scope) and dispatch on the method
        // themselves: a `{key:.*}` pattern made actix match a regex for every request, about
        // a tenth of the leader's CPU per read (docs/PERFORMANCE.md).
        .service(web::scope("/v1/kv").default_service(web::to(kv_route)))
        .service(web::scope("/v1/cas").default_service(web::to(cas_route)))
        .service(resource("/v1/list").route(web::get().to(list_route::list)))
        .service(resource("/v1/status").route(web::get().to(handlers::status)))
        .service(
            resource("/v1/snapshot")
                .route(web::post().to(snapshot_routes::take_snapshot))
                .route(web::get().to(snapshot_routes::download_snapshot)),
        )
        .service(resource("/health").route(web::get().to(handlers::health)))
        // Membership administration, forwarded to the leader like writes.
        .service(
            resource("/v1/members")
                .route(web::get().to(member_routes::list_members))
                .route(web::post().to(member_routes::add_member)),
        )
        .service(
            resource("/v1/members/{id}/promote")
                .route(web::post().to(member_routes::promote_member)),
        )
        .service(resource("/v1/members/{id}").route(web::delete().to(member_routes::remove_member)))
        .service(
            resource("/v1/leader/transfer")
                .route(web::post().to(member_routes::transfer_leadership)),
        )
        // Operations: metrics and the build.
        .service(resource("/metrics").route(web::get().to(handlers::metrics)))
        .service(resource("/version").route(web::get().to(handlers::version)))
        .service(
            resource(crate::consistency::consistency_checker::CHECKPOINTS_PATH)
                .route(web::get().to(handlers::checkpoints)),
        )
        .default_service(web::to(handlers::not_found));
}

/// The route label of the key routes in the HTTP metrics (the pattern they were once
/// registered under), so dashboards keep their series.
pub const KV_ROUTE: &str = "/v1/kv/{key:.*}";
pub const CAS_ROUTE: &str = "/v1/cas/{key:.*}";

/// The metrics label of `path` when it is a key route: known without asking the router, whose
/// pattern lookup would run a regex per request.
fn key_route_label(path: &str) -> Option<&'static str> {
    if path.starts_with("/v1/kv/") {
        Some(KV_ROUTE)
    } else if path.starts_with("/v1/cas/") {
        Some(CAS_ROUTE)
    } else {
        None
    }
}

/// `/v1/kv/<key>`: put, get, delete.
async fn kv_route(
    request: actix_web::HttpRequest,
    payload: web::Payload,
    state: web::Data<ApiState>,
) -> Result<actix_web::HttpResponse, ApiError> {
    use actix_web::http::Method;
    if key_route_label(request.path()).is_none() {
        // `/v1/kv` itself, with no key: no such route, as before the scope.
        return handlers::not_found(request).await;
    }
    match *request.method() {
        Method::PUT => handlers::put(request, payload, state).await,
        Method::GET => handlers::get(request, state).await,
        Method::DELETE => handlers::delete(request, state).await,
        _ => handlers::method_not_allowed(request).await,
    }
}

/// `/v1/cas/<key>`: compare-and-swap.
async fn cas_route(
    request: actix_web::HttpRequest,
    payload: web::Payload,
    state: web::Data<ApiState>,
) -> Result<actix_web::HttpResponse, ApiError> {
    if key_route_label(request.path()).is_none() {
        return handlers::not_found(request).await;
    }
    match *request.method() {
        actix_web::http::Method::POST => handlers::compare_and_swap(request, payload, state).await,
        _ => handlers::method_not_allowed(request).await,
    }
}

/// A route's resource: a method it has no route for is `405`, not the `404` of an unknown path.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(handlers::method_not_allowed))
}

/// Builds the complete `App` for one worker: state, routes and the response counter.
pub fn app(
    state: ApiState,
) -> actix_web::App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<actix_web::body::BoxBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let counters = state.counters.clone();
    let node_id = state.node_id;
    let raft_metrics = state.raft_metrics.clone();
    actix_web::App::new()
        .app_data(web::Data::new(state))
        .configure(configure)
        .wrap_fn(move |request, service| {
            let counters = counters.clone();
            let span = tracing::debug_span!(
                "request",
                node = %node_id,
                term = tracing::field::Empty,
                method = %request.method(),
                path = %request.path(),
            );
            // A metrics snapshot copies every counter and the latency histogram: only worth it
            // when the span is recorded at all.
            if let Some(metrics) = raft_metrics.as_ref().filter(|_| !span.is_disabled()) {
                span.record("term", metrics.snapshot().current_term.0);
            }
            let started = std::time::Instant::now();
            let method = crate::metrics::http::method_label(request.method());
            let key_route = key_route_label(request.path());
            let response = service.call(request);
            async move {
                let response = response.await?;
                let status = response.status().as_u16();
                // The pattern of the route matched (never the raw path: bounded series).
                let route = match key_route {
                    Some(route) => Some(route.to_owned()),
                    None => response.request().match_pattern(),
                };
                counters.observe_request(method, route, status, started.elapsed());
                tracing::debug!(
                    status,
                    elapsed_us = started.elapsed().as_micros() as u64,
                    "answered"
                );
                Ok(response)
            }
            .instrument(span)
        })
}
