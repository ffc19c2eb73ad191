//! The paid routes, built from the catalog ([`tessera_catalog::routes`]) and
//! nothing else. A face only attaches a handler to catalog route ids; method,
//! path and error family come from the declaration. Building the router
//! panics (so the server does not start) if a catalog route has no handler
//! or one has two.
//!
//! Every bound route is wrapped, outermost first, in:
//! 1. [`gate`]: picks the catalog route the request is (some share a method
//!    and path, told apart by the query), records it for the handler
//!    ([`PaidRoute`]), and, when payments are on, charges it through
//!    [`crate::x402::charge`] (or, for a cpu-tier route with an
//!    `X-Pow-Solution`, [`crate::pow::serve_with_pow`]) in a task of its own,
//!    which a client hanging up cannot stop half-way; with an
//!    `Idempotency-Key`, through [`crate::idempotency::serve`] first. A
//!    request no declaration admits is refused: the gate fails closed.
//! 2. the family's error rendering;
//! 3. the call deadline (`GATEWAY_REQUEST_TIMEOUT_SECONDS`): a call that
//!    takes longer is answered 504 and, being a failure, not charged.
//!
//! A method a path does not declare is 405 before anything runs, `HEAD`
//! included (axum would otherwise answer `HEAD` with the `GET` handler).

use crate::errors::{render, Family};
use crate::idempotency::{self, Credential, Idempotency};
use crate::pow::PowClient;
use crate::rate_limit::{Checked, RateLimit};
use crate::stats::{self, CallEvents};
use crate::x402::{Charged, PaymentGate};
use crate::AppState;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{Request, State};
use axum::handler::Handler;
use axum::http::{HeaderMap, Uri};
use axum::middleware::{from_fn_with_state, map_response_with_state, Next};
use axum::response::Response;
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_catalog::{Face, Method, Route, Tier};
use tessera_error::{Error, ErrorKind};
use tracing::Instrument as _;

/// The catalog route a request was matched to, for handlers whose method
/// and path serve more than one.
#[derive(Debug, Clone, Copy)]
pub struct PaidRoute(pub &'static Route);

/// A method and path the gateway serves, and the catalog routes behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredRoute {
    pub method: Method,
    /// The axum path pattern.
    pub path: &'static str,
    pub ids: Vec<&'static str>,
    pub face: Face,
}

/// One face's handlers, by catalog route id.
pub(crate) struct FaceRoutes {
    face: Face,
    bindings: Vec<(Vec<&'static Route>, MethodRouter<AppState>)>,
}

impl FaceRoutes {
    pub(crate) fn new(face: Face) -> Self {
        FaceRoutes {
            face,
            bindings: Vec::new(),
        }
    }

    /// Serves the catalog routes `ids` (one method and path) with `handler`.
    pub(crate) fn handle<H, T>(mut self, ids: &[&str], handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let routes: Vec<&'static Route> = ids
            .iter()
            .map(|id| {
                tessera_catalog::route(id)
                    .unwrap_or_else(|| panic!("route {id:?} is not in the catalog"))
            })
            .collect();
        let first = routes[0];
        for route in &routes {
            assert!(
                route.method == first.method && route.path == first.path,
                "{} and {} do not share a method and path",
                route.id,
                first.id
            );
            assert_eq!(route.face, self.face, "{} is not on this face", route.id);
        }
        self.bindings
            .push((routes, on(method_filter(first.method), handler)));
        self
    }
}

fn method_filter(method: Method) -> MethodFilter {
    match method {
        Method::Get => MethodFilter::GET,
        Method::Post => MethodFilter::POST,
        Method::Put => MethodFilter::PUT,
        Method::Delete => MethodFilter::DELETE,
    }
}

/// What wraps every paid route.
#[derive(Clone)]
pub(crate) struct Guard {
    /// `None`: FREE_MODE, nobody pays.
    pub(crate) payments: Option<PaymentGate>,
    /// Pays cpu-tier routes with proof of work (when payments are on).
    pub(crate) pow: Option<PowClient>,
    /// Calls paid with proof of work, per client IP.
    pub(crate) pow_calls: Option<RateLimit>,
    /// Where Idempotency-Key entries live; `None`: the header is ignored.
    pub(crate) idempotency: Option<Idempotency>,
    pub(crate) call_timeout: Duration,
    /// One call event per paid-route request, to the stats service.
    pub(crate) events: CallEvents,
    /// Paid calls in progress at once (`GATEWAY_MAX_CONCURRENT_REQUESTS`);
    /// past it a call is refused at once (503) rather than queued.
    pub(crate) in_progress: Arc<tokio::sync::Semaphore>,
    /// Long polls waiting at once (`GATEWAY_MAX_LONG_POLLS`): a budget of
    /// their own, so waiting calls cannot take every other call's place.
    pub(crate) long_polls: Arc<tokio::sync::Semaphore>,
}

#[derive(Clone)]
struct Gated {
    candidates: Arc<[&'static Route]>,
    payments: Option<PaymentGate>,
    pow: Option<PowClient>,
    pow_calls: Option<RateLimit>,
    idempotency: Option<Idempotency>,
    events: CallEvents,
}

/// The router of every face's routes, and what it declares.
pub(crate) fn build(
    faces: Vec<FaceRoutes>,
    guard: &Guard,
) -> (Router<AppState>, Vec<DeclaredRoute>) {
    let mut router = Router::new();
    let mut bound = HashSet::new();
    let mut declared = Vec::new();
    let mut methods_by_path: BTreeMap<&'static str, Vec<Method>> = BTreeMap::new();
    for face in faces {
        let family = Family::from(face.face);
        for (routes, method_router) in face.bindings {
            for route in &routes {
                assert!(bound.insert(route.id), "{} is bound twice", route.id);
            }
            let (method, path) = (routes[0].method, routes[0].path);
            let gated = Arc::new(Gated {
                candidates: routes.iter().copied().collect(),
                payments: guard.payments.clone(),
                pow: guard.pow.clone(),
                pow_calls: guard.pow_calls.clone(),
                idempotency: guard.idempotency.clone(),
                events: guard.events.clone(),
            });
            let timeout = deadline(routes[0], guard.call_timeout);
            let budget = if routes[0].long_poll {
                guard.long_polls.clone()
            } else {
                guard.in_progress.clone()
            };
            let method_router =
                method_router
                    .route_layer(
                        tower::ServiceBuilder::new()
                            .layer(HandleErrorLayer::new(
                                move |_: tower::BoxError| async move {
                                    deadline_passed(family, timeout)
                                },
                            ))
                            .timeout(timeout),
                    )
                    .route_layer(map_response_with_state(family, render))
                    .route_layer(from_fn_with_state(gated, gate))
                    // Inside the budget: it bounds the bodies held at once.
                    .route_layer(from_fn_with_state(
                        guard.call_timeout,
                        crate::body::read_whole,
                    ))
                    .route_layer(
                        tower::ServiceBuilder::new()
                            .layer(HandleErrorLayer::new(
                                move |_: tower::BoxError| async move { overloaded(family) },
                            ))
                            .load_shed()
                            .layer(tower::limit::GlobalConcurrencyLimitLayer::with_semaphore(
                                budget,
                            )),
                    );
            router = router.route(path, method_router);
            methods_by_path.entry(path).or_default().push(method);
            declared.push(DeclaredRoute {
                method,
                path,
                ids: routes.iter().map(|route| route.id).collect(),
                face: face.face,
            });
        }
    }
    for route in tessera_catalog::routes() {
        assert!(
            bound.contains(route.id),
            "catalog route {} has no handler",
            route.id
        );
    }
    for (path, _) in methods_by_path {
        // Not declared anywhere: HEAD must not reach a GET handler unpaid.
        router = router.route(
            path,
            on(
                MethodFilter::HEAD,
                tessera_runtime::http::method_not_allowed,
            ),
        );
    }
    (router, declared)
}

/// The longest a REST long poll waits.
pub(crate) const MAX_POLL_SECONDS: u32 = 50;

/// How long a call of `route` may take: the call timeout, and for a long
/// poll as long again as it may wait.
fn deadline(route: &Route, call_timeout: Duration) -> Duration {
    if route.long_poll {
        call_timeout + Duration::from_secs(MAX_POLL_SECONDS.into())
    } else {
        call_timeout
    }
}

fn overloaded(family: Family) -> Response {
    family.response(&Error::new(
        ErrorKind::Unavailable,
        "GATEWAY_OVERLOADED",
        "the gateway is at its concurrency limit; retry shortly",
    ))
}

fn deadline_passed(family: Family, timeout: Duration) -> Response {
    family.response(&Error::new(
        ErrorKind::Timeout,
        "DEADLINE_EXCEEDED",
        format!("the call did not finish within {} s", timeout.as_secs()),
    ))
}

/// How a request to a route is paid.
#[derive(Clone)]
enum Payer {
    /// FREE_MODE: nobody pays.
    Free,
    Pow(PowClient, Option<RateLimit>),
    X402(PaymentGate),
}

impl Payer {
    /// A cpu-tier route may be paid with proof of work; memory and anything
    /// else of the wallet tier ignores the header and asks for x402.
    fn of(gated: &Gated, route: &Route, request: &Request) -> Payer {
        let Some(payments) = &gated.payments else {
            return Payer::Free;
        };
        match &gated.pow {
            Some(pow)
                if route.tier == Tier::Cpu
                    && request.headers().contains_key(crate::pow::SOLUTION_HEADER) =>
            {
                Payer::Pow(pow.clone(), gated.pow_calls.clone())
            }
            _ => Payer::X402(payments.clone()),
        }
    }

    /// The network a call paid this way is counted on (x402 only).
    fn network(&self) -> String {
        match self {
            Payer::X402(payments) => payments.network().to_string(),
            Payer::Free | Payer::Pow(..) => String::new(),
        }
    }

    /// The rail a call paid this way is counted on (a replay or a charge
    /// seen on the answer refines it: see [`call_event`]).
    fn rail(&self) -> &'static str {
        match self {
            Payer::Free => stats::RAIL_FREE,
            Payer::Pow(..) => stats::RAIL_POW,
            Payer::X402(_) => stats::RAIL_USDC,
        }
    }

    async fn serve(self, route: &'static Route, request: Request, next: Next) -> Response {
        match self {
            Payer::Free => next.run(request).await,
            Payer::Pow(pow, limit) => {
                let mut allowed = None;
                if let Some(limit) = limit {
                    let client = limit.client_of(&request);
                    match limit.check(&client, Family::from(route.face)).await {
                        Checked::Allowed(headers) => allowed = Some(headers),
                        Checked::Limited(refused) => return refused,
                    }
                }
                let mut response = crate::pow::serve_with_pow(pow, route, request, next).await;
                if let Some(headers) = allowed {
                    headers.apply(&mut response);
                }
                response
            }
            Payer::X402(payments) => crate::x402::charge(payments, route, request, next).await,
        }
    }

    /// The Idempotency-Key credential; `Ok(None)` when the request proves
    /// nobody (an unpaid call), `Err` a refusal to answer.
    async fn credential(
        &self,
        route: &'static Route,
        headers: &HeaderMap,
        uri: &Uri,
    ) -> Result<Option<Credential>, Response> {
        match self {
            Payer::Free => Ok(Some(idempotency::free_mode_credential(headers))),
            Payer::Pow(..) => Ok(crate::pow::credential(headers)),
            Payer::X402(payments) => Ok(crate::x402::identify(payments, route, headers, uri)
                .await?
                .map(|payer| Credential(format!("x402:{payer}")))),
        }
    }
}

/// Resolves the catalog route and has it paid for (or not, in FREE_MODE),
/// at most once per Idempotency-Key; then counts the call.
async fn gate(State(gated): State<Arc<Gated>>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let Some(route) = tessera_catalog::select(&gated.candidates, request.uri().query()) else {
        let error = Error::internal("no catalog route admits this request");
        return Family::from(gated.candidates[0].face).response(&error);
    };
    request.extensions_mut().insert(PaidRoute(route));
    let payer = Payer::of(&gated, route, &request);
    let (rail, network) = (payer.rail(), payer.network());
    // An x402 call, or one under an Idempotency-Key, runs in a task of its
    // own (see `detached`), and so is counted there: a client hanging up
    // during settlement must not leave a charge out of the stats.
    let own_task =
        matches!(payer, Payer::X402(_)) || request.headers().contains_key(idempotency::KEY_HEADER);
    let events = gated.events.clone();
    let counted = async move {
        let response = pay_and_serve(&gated, route, payer, request, next).await;
        let status = Family::from(route.face).outcome_status(&response);
        events.emit(call_event(
            route, rail, &network, status, &response, started,
        ));
        response
    };
    if own_task {
        detached(route, counted).await
    } else {
        // A proof of work's claim is given back if the call is dropped
        // (see serve_with_pow): no task of its own needed.
        counted.await
    }
}

/// The stats event of `response` to a call of `route` paid on `rail`: a
/// replay from the Idempotency-Key store is counted as such (never
/// charged); a settled charge carries its amount and network.
fn call_event(
    route: &Route,
    rail: &'static str,
    network: &str,
    status: u16,
    response: &Response,
    started: Instant,
) -> tessera_proto::stats::v1::CallEvent {
    if response.headers().contains_key(idempotency::REPLAY_HEADER) {
        return stats::call_event(route.id, stats::RAIL_REPLAY, "", status, "", started);
    }
    match response.extensions().get::<Charged>() {
        Some(charged) => stats::call_event(
            route.id,
            stats::RAIL_USDC,
            &charged.network,
            status,
            &charged.amount.to_string(),
            started,
        ),
        None => stats::call_event(route.id, rail, network, status, "", started),
    }
}

/// Serves `request` paid by `payer`, at most once per Idempotency-Key.
async fn pay_and_serve(
    gated: &Arc<Gated>,
    route: &'static Route,
    payer: Payer,
    request: Request,
    next: Next,
) -> Response {
    let family = Family::from(route.face);
    let key = match idempotency::requested_key(request.headers()) {
        // A kept answer is a body and headers; a gRPC answer's trailers
        // (its status, its payment-response) would be lost on replay.
        Ok(Some(_)) if family == Family::Grpc => {
            return family.response(&Error::invalid(
                "IDEMPOTENCY_UNSUPPORTED",
                "Idempotency-Key is not supported over gRPC: a payment is already used once only; retry unpaid to get a fresh quote",
            ));
        }
        Ok(key) => key.zip(gated.idempotency.clone()),
        Err(error) => return family.response(&error),
    };
    let Some((key, idempotency)) = key else {
        return payer.serve(route, request, next).await;
    };
    let (headers, uri) = (request.headers().clone(), request.uri().clone());
    let credential = match payer.credential(route, &headers, &uri).await {
        Ok(Some(credential)) => credential,
        Ok(None) => return payer.serve(route, request, next).await,
        Err(refused) => return refused,
    };
    let free = matches!(payer, Payer::Free);
    idempotency::serve(
        idempotency,
        route,
        key,
        credential,
        free,
        request,
        |request| payer.serve(route, request, next),
    )
    .await
}

/// Runs `call` in a task of its own: a client that hangs up (the request
/// future dropped) must not stop a paid call between its verification, its
/// run and its settlement or cancellation, nor leave a proof of work or an
/// Idempotency-Key claimed for a call that never ran.
async fn detached(
    route: &'static Route,
    call: impl std::future::Future<Output = Response> + Send + 'static,
) -> Response {
    tokio::spawn(call.in_current_span())
        .await
        .unwrap_or_else(|failed| {
            tracing::error!(error = %failed, route = route.id, "a paid call's task failed");
            let error = Error::internal("the call failed inside the gateway");
            Family::from(route.face).response(&error)
        })
}
