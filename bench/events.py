"""Lambda events as API Gateway (REST API, proxy integration) and the TOKEN authorizer send them."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any
from urllib.parse import quote_plus, urlencode

API_ID = "abc123defg"
ACCOUNT = "123456789012"


def basic(client_id: str, secret: str) -> str:
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def proxy_event(
    path: str,
    method: str,
    *,
    headers: dict[str, str] | None = None,
    body: str | None = None,
    resource: str | None = None,
    source_ip: str = "198.51.100.7",
) -> dict[str, Any]:
    """A REST API proxy event with the headers CloudFront and API Gateway add."""
    h = {
        "Accept": "*/*",
        "CloudFront-Forwarded-Proto": "https",
        "CloudFront-Is-Desktop-Viewer": "true",
        "CloudFront-Viewer-Country": "NL",
        "Host": f"{API_ID}.execute-api.us-east-1.amazonaws.com",
        "User-Agent": "bench/1.0",
        "Via": "2.0 1a2b3c.cloudfront.net (CloudFront)",
        "X-Amz-Cf-Id": "cf-" + uuid.uuid4().hex,
        "X-Amzn-Trace-Id": "Root=1-" + uuid.uuid4().hex[:8] + "-" + uuid.uuid4().hex[:24],
        "X-Forwarded-For": f"{source_ip}, 130.176.0.1",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    }
    h.update(headers or {})
    now = time.time()
    return {
        "resource": resource or path,
        "path": path,
        "httpMethod": method,
        "headers": h,
        "multiValueHeaders": {k: [v] for k, v in h.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "a1b2c3",
            "resourcePath": resource or path,
            "httpMethod": method,
            "extendedRequestId": "ext-" + uuid.uuid4().hex[:12],
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "path": "/api" + path,
            "accountId": ACCOUNT,
            "protocol": "HTTP/1.1",
            "stage": "api",
            "domainPrefix": API_ID,
            "requestTimeEpoch": int(now * 1000),
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": source_ip, "userAgent": "bench/1.0"},
            "domainName": f"{API_ID}.execute-api.us-east-1.amazonaws.com",
            "apiId": API_ID,
        },
        "body": body,
        "isBase64Encoded": False,
    }


def token_request(form: dict[str, str], authorization: str | None) -> dict[str, Any]:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if authorization:
        headers["Authorization"] = authorization
    return proxy_event("/oauth2/token", "POST", headers=headers, body=urlencode(form))


def form_request(path: str, form: dict[str, str], authorization: str | None) -> dict[str, Any]:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if authorization:
        headers["Authorization"] = authorization
    return proxy_event(path, "POST", headers=headers, body=urlencode(form))


def authorizer_event(token: str, path: str = "/people", method: str = "GET") -> dict[str, Any]:
    """What API Gateway sends a TOKEN authorizer."""
    return {
        "type": "TOKEN",
        "authorizationToken": "Bearer " + token,
        "methodArn": f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{API_ID}/api/{method}{path}",
    }


class LambdaContext:
    """The attributes handlers read from the Lambda context object."""

    function_name = "tessera-bench"
    function_version = "$LATEST"
    invoked_function_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:tessera-bench"
    memory_limit_in_mb = 1024
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/tessera-bench"
    log_stream_name = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000
