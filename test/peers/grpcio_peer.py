"""A gRPC peer on the C-core implementation (Debian's python3-grpcio).

Reads {"target": "host:port", "cases": [...]} as JSON on stdin and writes one
JSON answer per case on stdout. Messages travel as hex-encoded bytes: the
test encodes and decodes them with protobuf-es, so this peer needs no
generated code and exercises only grpcio's wire behaviour.

A case: name, method ("/pkg.Service/Method"), kind ("unary" or "stream"),
requests (hex strings), metadata ([[key, value]]), timeout (seconds),
compression ("gzip"), pause_after/pause (stream: sleep after message i),
cancel_after (stream: after message i, hold the stream and cancel it).
"""
import json
import sys
import threading
import time

import grpc


def pairs(metadata):
    return [[k, v if isinstance(v, str) else v.hex()] for k, v in (metadata or [])]


def run(channel, case):
    requests = [bytes.fromhex(h) for h in case.get("requests", [])]
    options = {
        "timeout": case.get("timeout"),
        "metadata": [tuple(m) for m in case.get("metadata", [])],
        "compression": grpc.Compression.Gzip
        if case.get("compression") == "gzip"
        else grpc.Compression.NoCompression,
    }
    answer = {"name": case["name"]}
    release = threading.Event()
    try:
        if case.get("kind", "unary") == "unary":
            call = channel.unary_unary(case["method"])
            response, rpc = call.with_call(requests[0], **options)
        else:
            call = channel.stream_unary(case["method"])

            def messages():
                for i, message in enumerate(requests):
                    yield message
                    if case.get("pause_after") == i:
                        time.sleep(case["pause"])
                    if case.get("cancel_after") == i:
                        release.wait(10)
                        return

            rpc = call.future(messages(), **options)
            if "cancel_after" in case:
                time.sleep(0.3)
                rpc.cancel()
            response = rpc.result()
        answer.update(
            code="OK",
            response=response.hex(),
            initial=pairs(rpc.initial_metadata()),
            trailing=pairs(rpc.trailing_metadata()),
        )
    except grpc.FutureCancelledError:
        answer.update(code="CANCELLED", details="cancelled by the client")
    except grpc.RpcError as err:
        answer.update(
            code=err.code().name,
            details=err.details(),
            initial=pairs(err.initial_metadata()),
            trailing=pairs(err.trailing_metadata()),
        )
    finally:
        release.set()
    return answer


def main():
    job = json.load(sys.stdin)
    with grpc.insecure_channel(
        job["target"],
        options=[("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)],
    ) as channel:
        grpc.channel_ready_future(channel).result(timeout=10)
        for case in job["cases"]:
            print(json.dumps(run(channel, case)), flush=True)


if __name__ == "__main__":
    main()
