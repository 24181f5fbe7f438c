//! What every GraphQL request goes through, whatever its transport (HTTP, upload, WebSocket):
//!
//! - [`Checker`]: the [`precheck`](crate::graphql::limits::precheck) of a document (tokens,
//!   nesting, spreads, expanded selections, aliases, text of every string argument) runs on the
//!   blocking pool, at most `GRAPHQL_CHECK_CONCURRENCY` at once, so that no document keeps the
//!   tokio workers (and `/healthz`) from answering; a request that waits longer than the
//!   deadline for its turn is refused (`TIMEOUT`).
//! - [`Shield`], an async-graphql extension: prechecks documents the HTTP edge has not prechecked
//!   already (the WebSocket's); stops any query or mutation that runs longer than
//!   `GRAPHQL_REQUEST_TIMEOUT_SECS` (`TIMEOUT`); and before each operation on a socket checks the
//!   credential the socket was opened with (expiry, sign-out everywhere, ban, role change); and
//!   once the document is parsed, coerces the variables of the operation to run against their
//!   declared types (see [`crate::graphql::variables`]), refusing the request (`BAD_USER_INPUT`)
//!   before anything runs.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextPrepareRequest,
    NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::parser::types::VariableDefinition;
use async_graphql::{
    ErrorExtensions as _, Pos, Positioned, Request, Response, ServerError, ServerResult,
    ValidationResult, Variables,
};
use domain::ErrorCode;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::graphql::limits::{DocumentLimits, Refusal, precheck};
use crate::graphql::variables::{check_variables, selected_operation};
use crate::infra::state::AppState;

/// Why a document was not run: refused by the precheck, or no turn within the deadline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// `TIMEOUT`: every checker was busy for the whole deadline.
    #[error("the server is busy; try again in a moment")]
    Busy,
}

impl CheckError {
    pub fn code(&self) -> ErrorCode {
        match self {
            CheckError::Refused(r) => r.code(),
            CheckError::Busy => ErrorCode::Timeout,
        }
    }

    pub fn to_server_error(&self) -> ServerError {
        match self {
            CheckError::Refused(r) => r.to_server_error(),
            CheckError::Busy => coded(ErrorCode::Timeout, &self.to_string()),
        }
    }
}

fn coded(code: ErrorCode, message: &str) -> ServerError {
    async_graphql::Error::new(message)
        .extend_with(|_, ext| ext.set("code", code.as_str()))
        .into_server_error(Pos::default())
}

/// Runs prechecks on the blocking pool, a bounded number at once. Schema data.
#[derive(Clone)]
pub struct Checker {
    permits: Arc<Semaphore>,
    limits: DocumentLimits,
    deadline: Duration,
}

impl Checker {
    pub fn new(limits: DocumentLimits, concurrency: usize, deadline: Duration) -> Checker {
        Checker {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            limits,
            deadline,
        }
    }

    /// The request deadline (`GRAPHQL_REQUEST_TIMEOUT_SECS`).
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Prechecks `query` off the tokio workers; the parsed document when it passes.
    pub async fn precheck(
        &self,
        query: String,
        variables: Variables,
    ) -> Result<ExecutableDocument, CheckError> {
        let permit = tokio::time::timeout(self.deadline, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| CheckError::Busy)?
            .map_err(|_| CheckError::Busy)?;
        let limits = self.limits;
        let started = std::time::Instant::now();
        let result = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            precheck(&query, &variables, &limits)
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "a document check failed");
            CheckError::Busy
        })?;
        if let Err(refusal) = &result {
            tracing::info!(
                refusal = %refusal,
                duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                "document refused"
            );
        }
        Ok(result?)
    }
}

/// Request data: the HTTP edge has prechecked this request's document already.
pub struct Prechecked;

/// Connection data of a socket opened with an access token: what the socket's right to go on
/// rests on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketCredential {
    pub account: Uuid,
    /// `iat` of the token (`None` when the gateway did not say).
    pub iat: Option<i64>,
    /// `exp` of the token (`None` when the gateway did not say).
    pub exp: Option<i64>,
    /// The API client of the token, whose revocation ends the socket too.
    pub client: Option<Uuid>,
}

/// Why a socket's credential no longer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lapsed {
    /// The access token expired: close 4403 (Forbidden), on which the reference `graphql-ws`
    /// client retries and calls its `connectionParams` again, so it reconnects with a renewed
    /// token. Not 4401 (Unauthorized): `graphql-ws` treats that code as final and gives up.
    Expired,
    /// Signed out everywhere, banned or given another role: close 4403.
    Ended,
}

impl Lapsed {
    /// The close code and reason of the socket.
    pub fn close(self) -> (u16, &'static str) {
        match self {
            Lapsed::Expired => (4403, "Forbidden: the access token expired"),
            Lapsed::Ended => (4403, "Forbidden: the session has ended"),
        }
    }
}

/// Whether the socket may go on. A failure to check fails closed, as on HTTP.
pub async fn check_credential(
    state: &AppState,
    credential: &SocketCredential,
) -> Result<(), Lapsed> {
    if credential
        .exp
        .is_some_and(|exp| chrono::Utc::now().timestamp() >= exp)
    {
        return Err(Lapsed::Expired);
    }
    if let Some(client) = credential.client {
        match crate::identity::clients::active(state, client, credential.account).await {
            Ok(true) => {}
            Ok(false) => return Err(Lapsed::Ended),
            Err(e) => {
                tracing::error!(error = %e, "checking the API client of a socket");
                return Err(Lapsed::Ended);
            }
        }
    }
    match crate::identity::access_allowed(state, credential.account, credential.iat).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(Lapsed::Ended),
        Err(e) => {
            tracing::error!(error = %e, "checking the session cut of a socket");
            Err(Lapsed::Ended)
        }
    }
}

/// The extension (see the module's doc).
pub struct Shield;

impl ExtensionFactory for Shield {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ShieldRequest::default())
    }
}

/// The extension's state for one request: the name of the operation to run (seen when the
/// request is prepared), then its variables as declared and as given (once the document is
/// parsed), checked when validation starts.
#[derive(Default)]
struct ShieldRequest {
    operation_name: std::sync::Mutex<Option<String>>,
    variables: std::sync::Mutex<Option<(Vec<Positioned<VariableDefinition>>, Variables)>>,
}

fn missing(what: &str) -> ServerError {
    tracing::error!("{what} is missing from the schema data");
    coded(
        ErrorCode::InternalServerError,
        "something went wrong on our side; please try again",
    )
}

#[async_graphql::async_trait::async_trait]
impl Extension for ShieldRequest {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        if let Some(credential) = ctx.data_opt::<SocketCredential>() {
            let state = ctx
                .data_opt::<AppState>()
                .ok_or_else(|| missing("AppState"))?;
            if check_credential(state, credential).await.is_err() {
                return Err(coded(
                    ErrorCode::Unauthenticated,
                    "the access token is invalid or expired",
                ));
            }
        }
        if let Ok(mut name) = self.operation_name.lock() {
            name.clone_from(&request.operation_name);
        }
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        if ctx.data_opt::<Prechecked>().is_none() {
            let checker = ctx
                .data_opt::<Checker>()
                .ok_or_else(|| missing("Checker"))?;
            checker
                .precheck(query.to_owned(), variables.clone())
                .await
                .map_err(|e| e.to_server_error())?;
        }
        let doc = next.run(ctx, query, variables).await?;
        let name = self
            .operation_name
            .lock()
            .map(|n| n.clone())
            .unwrap_or_default();
        if let Some(operation) = selected_operation(&doc, name.as_deref())
            && let Ok(mut slot) = self.variables.lock()
        {
            *slot = Some((operation.variable_definitions.clone(), variables.clone()));
        }
        Ok(doc)
    }

    /// Variables are coerced before the document is validated, so that a value that does not
    /// fit is `BAD_USER_INPUT` whether or not an argument's own check would also have caught it.
    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let declared = self.variables.lock().ok().and_then(|mut slot| slot.take());
        if let Some((definitions, variables)) = declared {
            check_variables(&ctx.schema_env.registry, &definitions, &variables).map_err(|bad| {
                let field = bad.path.trim_start_matches('$').to_owned();
                vec![
                    async_graphql::Error::new(bad.to_string())
                        .extend_with(|_, ext| {
                            ext.set("code", ErrorCode::BadUserInput.as_str());
                            ext.set("field", field.as_str());
                        })
                        .into_server_error(Pos::default()),
                ]
            })?;
        }
        next.run(ctx).await
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let Some(deadline) = ctx.data_opt::<Checker>().map(Checker::deadline) else {
            return Response::from_errors(vec![missing("Checker")]);
        };
        match tokio::time::timeout(deadline, next.run(ctx, operation_name)).await {
            Ok(response) => response,
            Err(_) => {
                tracing::warn!(
                    operation = operation_name.unwrap_or(""),
                    deadline_ms = u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX),
                    "request stopped at its deadline"
                );
                Response::from_errors(vec![coded(
                    ErrorCode::Timeout,
                    &format!(
                        "the request took longer than {} ms and was stopped",
                        deadline.as_millis()
                    ),
                )])
            }
        }
    }
}
