//! Running a tool: look it up, parse its input, then run it: a light tool
//! inline, any other on the blocking pool, in a slot, under the deadline.

use crate::config::ToolsConfig;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tessera_error::{Error, ErrorKind};
use tessera_proto::tools::v1 as pb;
use tessera_proto::tools::v1::tools_service_server::ToolsService;
use tessera_toolbox::{Cost, Tool, MAX_INPUT_BYTES};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tonic::{Request, Response, Status};

/// Runs tools, bounded in concurrency and time.
#[derive(Clone)]
pub struct Runner {
    slots: Arc<Semaphore>,
    deadline: Duration,
}

impl Runner {
    pub fn new(config: &ToolsConfig) -> Self {
        Runner {
            slots: Arc::new(Semaphore::new(config.max_concurrent)),
            deadline: config.deadline,
        }
    }

    /// Runs the tool `slug` on `input_json` (a JSON object).
    pub async fn invoke(&self, slug: &str, input_json: &str) -> Result<Value, Error> {
        let tool = find(slug)?;
        if input_json.len() > MAX_INPUT_BYTES {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "INPUT_TOO_LARGE",
                format!(
                    "the input is {} bytes; a tool takes at most {MAX_INPUT_BYTES}",
                    input_json.len()
                ),
            ));
        }
        let input: Value = serde_json::from_str(input_json).map_err(|error| {
            Error::invalid("INVALID_JSON", format!("the input is not JSON: {error}"))
        })?;
        if !input.is_object() {
            return Err(Error::invalid(
                "INVALID_INPUT",
                "the input must be a JSON object",
            ));
        }
        self.run(tool, input).await
    }

    async fn run(&self, tool: &'static Tool, input: Value) -> Result<Value, Error> {
        if tool.cost == Cost::Light {
            // Microseconds even at the input limit: a hand-off to the
            // blocking pool would cost more than the work.
            return tool.run(input).map_err(Error::from);
        }
        let give_up = Instant::now() + self.deadline;
        let slot = tokio::time::timeout_at(give_up, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| timed_out(tool, self.deadline))?
            .map_err(|_| Error::unavailable("TOOLS_STOPPING", "the tools service is stopping"))?;
        let run = tokio::task::spawn_blocking(move || {
            // The slot is held until the run really ends, even past the deadline.
            let _slot = slot;
            tool.run(input)
        });
        match tokio::time::timeout_at(give_up, run).await {
            Err(_) => Err(timed_out(tool, self.deadline)),
            Ok(Err(join)) => {
                tracing::error!(slug = tool.slug, %join, "a tool panicked");
                Err(Error::internal(format!("the tool {} failed", tool.slug)))
            }
            Ok(Ok(result)) => result.map_err(Error::from),
        }
    }
}

fn find(slug: &str) -> Result<&'static Tool, Error> {
    tessera_toolbox::find(slug).ok_or_else(|| {
        Error::new(
            ErrorKind::NotFound,
            "TOOL_NOT_FOUND",
            format!("no tool is named {slug:?}"),
        )
    })
}

fn timed_out(tool: &Tool, deadline: Duration) -> Error {
    Error::new(
        ErrorKind::Timeout,
        "TOOL_DEADLINE",
        format!(
            "the tool {} did not finish within {} ms",
            tool.slug,
            deadline.as_millis()
        ),
    )
}

/// The gRPC face of a [`Runner`].
#[derive(Clone)]
pub struct ToolsServer {
    runner: Runner,
}

impl ToolsServer {
    pub fn new(runner: Runner) -> Self {
        ToolsServer { runner }
    }
}

#[tonic::async_trait]
impl ToolsService for ToolsServer {
    #[tracing::instrument(skip_all, fields(slug = %request.get_ref().slug))]
    async fn invoke(
        &self,
        request: Request<pb::InvokeRequest>,
    ) -> Result<Response<pb::InvokeResponse>, Status> {
        let request = request.into_inner();
        let output = self
            .runner
            .invoke(&request.slug, &request.input_json)
            .await
            .map_err(|error| error.to_status())?;
        Ok(Response::new(pb::InvokeResponse {
            output_json: output.to_string(),
        }))
    }

    async fn list_tools(
        &self,
        _request: Request<pb::ListToolsRequest>,
    ) -> Result<Response<pb::ListToolsResponse>, Status> {
        let tools = tessera_toolbox::all()
            .map(|tool| pb::ToolInfo {
                slug: tool.slug.into(),
                name: tool.name.into(),
                description: tool.description.into(),
                category: tool.category.into(),
                tags: tool.tags.iter().map(|tag| tag.to_string()).collect(),
                method: tool.method.as_str().into(),
                path: tool.path.into(),
                input_schema_json: (tool.input_schema)().to_string(),
                example_json: (tool.example)().to_string(),
            })
            .collect();
        Ok(Response::new(pb::ListToolsResponse { tools }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn runner(max_concurrent: usize, deadline_ms: u64) -> Runner {
        Runner::new(&ToolsConfig {
            max_concurrent,
            deadline: Duration::from_millis(deadline_ms),
            ..Default::default()
        })
    }

    #[tokio::test]
    async fn runs_a_tool_by_slug() {
        let output = runner(2, 2000)
            .invoke("sha256", r#"{"text":"abc"}"#)
            .await
            .unwrap();
        assert_eq!(
            output["hex"],
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[tokio::test]
    async fn refusals_say_what_is_wrong() {
        let runner = runner(2, 2000);
        let unknown = runner.invoke("no-such-tool", "{}").await.unwrap_err();
        assert_eq!(
            (unknown.kind, unknown.reason.as_str()),
            (ErrorKind::NotFound, "TOOL_NOT_FOUND")
        );
        let not_json = runner.invoke("sha256", "{").await.unwrap_err();
        assert_eq!(not_json.reason, "INVALID_JSON");
        let not_object = runner.invoke("sha256", "[1]").await.unwrap_err();
        assert_eq!(not_object.reason, "INVALID_INPUT");
        let big = json!({ "text": "x".repeat(MAX_INPUT_BYTES) }).to_string();
        let too_large = runner.invoke("sha256", &big).await.unwrap_err();
        assert_eq!(too_large.reason, "INPUT_TOO_LARGE");
        let missing = runner.invoke("sha256", "{}").await.unwrap_err();
        assert_eq!(missing.kind, ErrorKind::InvalidArgument);
        assert!(missing.message.contains("text"), "{}", missing.message);
        let wrong_type = runner.invoke("sha256", r#"{"text": 5}"#).await.unwrap_err();
        assert_eq!(
            wrong_type.details.get("field").map(String::as_str),
            Some("text")
        );
        // Over gRPC the field travels in the status's ErrorInfo.
        let status = wrong_type.to_status();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(
            Error::from_status(&status)
                .details
                .get("field")
                .map(String::as_str),
            Some("text")
        );
    }

    #[tokio::test]
    async fn a_call_waiting_past_its_deadline_times_out_and_the_slot_is_not_lost() {
        let runner = runner(1, 200);
        // Hold the only slot: the next (heavy) call waits, then gives up at
        // its deadline; a light one runs inline and does not wait.
        let held = runner.slots.clone().acquire_owned().await.unwrap();
        runner.invoke("sha256", r#"{"text":"a"}"#).await.unwrap();
        let started = std::time::Instant::now();
        let error = runner
            .invoke("json-minify", r#"{"text":"[1, 2]"}"#)
            .await
            .unwrap_err();
        assert_eq!(
            (error.kind, error.reason.as_str()),
            (ErrorKind::Timeout, "TOOL_DEADLINE")
        );
        assert!(
            started.elapsed() >= Duration::from_millis(190),
            "{:?}",
            started.elapsed()
        );
        drop(held);
        runner
            .invoke("json-minify", r#"{"text":"[1, 2]"}"#)
            .await
            .unwrap();
        assert_eq!(runner.slots.available_permits(), 1);
    }
}
