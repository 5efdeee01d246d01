//! Wire details shared by the simulated services: SigV4 `Authorization` parsing, AWS error
//! shapes for the JSON 1.1 and Query protocols, XML escaping and timestamps.

use std::time::SystemTime;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// What the simulator reads from a SigV4 `Authorization` header. The signature itself is not
/// verified: the simulator checks the header's form and its credential scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SigV4 {
    pub(crate) access_key_id: String,
    pub(crate) region: String,
    pub(crate) service: String,
}

/// Parse `AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request,
/// SignedHeaders=a;b, Signature=hex`.
pub(crate) fn parse_authorization(value: &str) -> Result<SigV4, String> {
    let rest = value
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or_else(|| "Authorization header must use the AWS4-HMAC-SHA256 algorithm".to_string())?;
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed_headers = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let credential = credential.ok_or("Authorization header requires 'Credential' parameter")?;
    let signed_headers = signed_headers.ok_or("Authorization header requires 'SignedHeaders' parameter")?;
    let signature = signature.ok_or("Authorization header requires 'Signature' parameter")?;
    if signed_headers.is_empty() || !signed_headers.split(';').any(|h| h == "host") {
        return Err("SignedHeaders must include host".into());
    }
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("Signature must be 64 hexadecimal characters".into());
    }
    let parts: Vec<&str> = credential.split('/').collect();
    if parts.len() != 5 || parts[4] != "aws4_request" || parts[1].len() != 8 || parts[0].is_empty() {
        return Err(format!(
            "Credential should be of the form ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request; got {} parts",
            parts.len()
        ));
    }
    Ok(SigV4 {
        access_key_id: parts[0].to_string(),
        region: parts[2].to_string(),
        service: parts[3].to_string(),
    })
}

/// An AWS error, rendered in the protocol of the service that raised it; or, for the `not_aws`
/// fault, no AWS answer at all.
#[derive(Debug, Clone)]
pub(crate) struct AwsError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    /// The `Reason` member of an Organizations `InvalidInputException`.
    pub(crate) reason: Option<&'static str>,
    /// Answer [`NOT_AWS_BODY`] instead, whatever the protocol.
    not_aws: bool,
}

/// What a generic reverse proxy (here nginx's default page) answers when its upstream fails: the
/// `not_aws` fault's body, served as `text/html` with status 500 and no AWS header.
pub(crate) const NOT_AWS_BODY: &str = "<html>\r\n<head><title>500 Internal Server Error</title></head>\r\n<body>\r\n<center><h1>500 Internal Server Error</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

impl AwsError {
    pub(crate) fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        AwsError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            code,
            message: message.into(),
            reason: None,
            not_aws: false,
        }
    }

    /// The `not_aws` fault: HTTP 500 with a small HTML page and no AWS error code, in either
    /// protocol.
    pub(crate) fn not_aws() -> Self {
        AwsError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "",
            message: String::new(),
            reason: None,
            not_aws: true,
        }
    }

    fn not_aws_response(&self) -> Response {
        (self.status, [(header::CONTENT_TYPE, "text/html")], NOT_AWS_BODY).into_response()
    }

    /// Query protocol (STS, IAM): `<ErrorResponse><Error><Type/><Code/><Message/></Error>`.
    pub(crate) fn query_response(&self, namespace: &str, request_id: &str) -> Response {
        if self.not_aws {
            return self.not_aws_response();
        }
        let kind = if self.status.is_server_error() {
            "Receiver"
        } else {
            "Sender"
        };
        let body = format!(
            "<ErrorResponse xmlns=\"{namespace}\">\n  <Error>\n    <Type>{kind}</Type>\n    <Code>{}</Code>\n    <Message>{}</Message>\n  </Error>\n  <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n",
            self.code,
            xml_escape(&self.message)
        );
        (
            self.status,
            [
                (header::CONTENT_TYPE, "text/xml"),
                (header::HeaderName::from_static("x-amzn-requestid"), request_id),
            ],
            body,
        )
            .into_response()
    }

    /// JSON 1.1 protocol (Organizations): `{"__type": code, "Message": ...}`. Authentication
    /// errors carry the JSON services' own codes.
    pub(crate) fn json_response(&self, request_id: &str) -> Response {
        if self.not_aws {
            return self.not_aws_response();
        }
        let code = match self.code {
            "InvalidClientTokenId" => "UnrecognizedClientException",
            "MissingAuthenticationToken" => "MissingAuthenticationTokenException",
            "ExpiredToken" => "ExpiredTokenException",
            other => other,
        };
        let mut body = serde_json::json!({ "__type": code, "Message": self.message });
        if let Some(reason) = self.reason {
            body["Reason"] = reason.into();
        }
        let body = body.to_string();
        (
            self.status,
            [
                (header::CONTENT_TYPE, "application/x-amz-json-1.1"),
                (header::HeaderName::from_static("x-amzn-requestid"), request_id),
            ],
            body,
        )
            .into_response()
    }

    /// AWS JSON 1.0 with query compatibility (SQS): `{"__type": "com.amazonaws.sqs#Shape",
    /// "message": ...}` and the `x-amzn-query-error: CODE;Sender|Receiver` header, whose code
    /// is what SDKs report (`AWS.SimpleQueueService.NonExistentQueue` for `QueueDoesNotExist`).
    pub(crate) fn sqs_response(&self, request_id: &str) -> Response {
        if self.not_aws {
            return self.not_aws_response();
        }
        let (shape, query_code) = sqs_error_names(self.code);
        let fault = if self.status.is_server_error() {
            "Receiver"
        } else {
            "Sender"
        };
        let body = serde_json::json!({ "__type": shape, "message": self.message }).to_string();
        (
            self.status,
            [
                (header::CONTENT_TYPE, "application/x-amz-json-1.0".to_string()),
                (
                    header::HeaderName::from_static("x-amzn-requestid"),
                    request_id.to_string(),
                ),
                (
                    header::HeaderName::from_static("x-amzn-query-error"),
                    format!("{query_code};{fault}"),
                ),
            ],
            body,
        )
            .into_response()
    }
}

/// An SQS error's `__type` and its query-compatible code, from the code the simulator raised.
fn sqs_error_names(code: &str) -> (String, &str) {
    let sqs = |shape: &str| format!("com.amazonaws.sqs#{shape}");
    let coral = |shape: &str| format!("com.amazon.coral.service#{shape}");
    match code {
        "QueueDoesNotExist" => (sqs(code), "AWS.SimpleQueueService.NonExistentQueue"),
        "MessageNotInflight"
        | "EmptyBatchRequest"
        | "TooManyEntriesInBatchRequest"
        | "BatchEntryIdsNotDistinct"
        | "InvalidBatchEntryId"
        | "UnsupportedOperation" => (
            sqs(code),
            match code {
                "MessageNotInflight" => "AWS.SimpleQueueService.MessageNotInflight",
                "EmptyBatchRequest" => "AWS.SimpleQueueService.EmptyBatchRequest",
                "TooManyEntriesInBatchRequest" => "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
                "BatchEntryIdsNotDistinct" => "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
                "InvalidBatchEntryId" => "AWS.SimpleQueueService.InvalidBatchEntryId",
                _ => "AWS.SimpleQueueService.UnsupportedOperation",
            },
        ),
        "InvalidParameterValue" => (sqs("InvalidParameterValueException"), code),
        "MissingParameter" => (sqs("MissingRequiredParameterException"), code),
        "AccessDenied" => (coral("AccessDeniedException"), code),
        "InternalFailure" => (coral("InternalFailure"), "InternalError"),
        "InvalidClientTokenId" => (coral("UnrecognizedClientException"), code),
        "ExpiredToken" => (coral("ExpiredTokenException"), code),
        "MissingAuthenticationToken" => (coral("MissingAuthenticationTokenException"), code),
        "SignatureDoesNotMatch" => (coral("InvalidSignatureException"), code),
        "IncompleteSignature" => (coral("IncompleteSignatureException"), code),
        "SerializationException" | "UnknownOperationException" => (coral(code), code),
        // ReceiptHandleIsInvalid, InvalidAddress, InvalidAttributeName, RequestThrottled, ...
        other => (sqs(other), other),
    }
}

/// A successful AWS JSON 1.0 answer (SQS).
pub(crate) fn json10_ok(value: serde_json::Value, request_id: &str) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/x-amz-json-1.0"),
            (header::HeaderName::from_static("x-amzn-requestid"), request_id),
        ],
        value.to_string(),
    )
        .into_response()
}

/// A successful Query-protocol answer: `<{Op}Response><{Op}Result>inner</...>`.
pub(crate) fn query_ok(operation: &str, namespace: &str, result_inner: &str, request_id: &str) -> Response {
    let result = if result_inner.is_empty() {
        String::new()
    } else {
        format!("  <{operation}Result>\n{result_inner}  </{operation}Result>\n")
    };
    let body = format!(
        "<{operation}Response xmlns=\"{namespace}\">\n{result}  <ResponseMetadata>\n    <RequestId>{request_id}</RequestId>\n  </ResponseMetadata>\n</{operation}Response>\n"
    );
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/xml"),
            (header::HeaderName::from_static("x-amzn-requestid"), request_id),
        ],
        body,
    )
        .into_response()
}

/// The input of a JSON-protocol request (Organizations, SQS): an object (an empty body is `{}`),
/// for an operation the service serves.
pub(crate) fn json_request(
    body: &[u8],
    operation: &str,
    operations: &[&str],
) -> Result<serde_json::Map<String, serde_json::Value>, AwsError> {
    let input: serde_json::Value = if body.is_empty() {
        serde_json::Value::Object(serde_json::Map::new())
    } else {
        serde_json::from_slice(body)
            .map_err(|e| AwsError::new(400, "SerializationException", format!("request body is not JSON: {e}")))?
    };
    let serde_json::Value::Object(input) = input else {
        return Err(AwsError::new(
            400,
            "SerializationException",
            "request body must be a JSON object",
        ));
    };
    if !operations.contains(&operation) {
        return Err(AwsError::new(
            400,
            "UnknownOperationException",
            format!("operation {operation} is not supported by this simulator"),
        ));
    }
    Ok(input)
}

pub(crate) fn json_ok(value: serde_json::Value, request_id: &str) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/x-amz-json-1.1"),
            (header::HeaderName::from_static("x-amzn-requestid"), request_id),
        ],
        value.to_string(),
    )
        .into_response()
}

pub(crate) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// ISO 8601 as the Query protocols write timestamps.
pub(crate) fn iso8601(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Epoch seconds as JSON 1.1 writes timestamps.
pub(crate) fn epoch_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_sigv4_header() {
        let h = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20241115/us-east-1/sts/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let s = parse_authorization(h).unwrap();
        assert_eq!(s.access_key_id, "AKIDEXAMPLE");
        assert_eq!(s.region, "us-east-1");
        assert_eq!(s.service, "sts");
    }

    #[test]
    fn rejects_malformed_headers() {
        assert!(parse_authorization("Basic abc").is_err());
        assert!(
            parse_authorization(
                "AWS4-HMAC-SHA256 Credential=AK/2024/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=00"
            )
            .is_err()
        );
        assert!(parse_authorization("AWS4-HMAC-SHA256 Credential=AK/20241115/us-east-1/sts, SignedHeaders=host, Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef").is_err());
    }

    #[test]
    fn escapes_xml() {
        assert_eq!(xml_escape("a<b&\"c\""), "a&lt;b&amp;&quot;c&quot;");
    }

    #[tokio::test]
    async fn not_aws_is_the_same_html_500_in_both_protocols() {
        for response in [
            AwsError::not_aws().query_response("https://sts.amazonaws.com/doc/2011-06-15/", "req-1"),
            AwsError::not_aws().json_response("req-1"),
        ] {
            assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
            let headers = response.headers().clone();
            assert_eq!(headers.get(header::CONTENT_TYPE).unwrap(), "text/html");
            assert!(headers.keys().all(|k| !k.as_str().starts_with("x-amz")), "{headers:?}");
            let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
            assert_eq!(body, NOT_AWS_BODY.as_bytes());
        }
        // An AWS error keeps its shape.
        let r = AwsError::new(400, "Throttling", "Rate exceeded").query_response("ns", "req-2");
        assert_eq!(r.headers().get(header::CONTENT_TYPE).unwrap(), "text/xml");
    }
}
