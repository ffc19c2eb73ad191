"""Describes a gRPC server the way a Python user would: through
grpcio-reflection's ProtoReflectionDescriptorDatabase (reflection v1alpha).

usage: describe.py HOST:PORT SERVICE [TOKEN]
prints one JSON line: {"services": [...], "methods": [...]} for SERVICE,
or exits 1 with the gRPC error.
"""

import json
import sys

import grpc
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


def main() -> int:
    target, service = sys.argv[1], sys.argv[2]
    channel = grpc.insecure_channel(target)
    if len(sys.argv) > 3:
        token = sys.argv[3]
        channel = grpc.intercept_channel(channel, _Bearer(token))
    database = ProtoReflectionDescriptorDatabase(channel)
    try:
        services = list(database.get_services())
        described = DescriptorPool(database).FindServiceByName(service)
    except grpc.RpcError as error:
        print(json.dumps({"code": error.code().name, "details": error.details()}))
        return 1
    print(json.dumps({
        "services": services,
        "methods": [method.name for method in described.methods],
    }))
    return 0


class _Bearer(grpc.StreamStreamClientInterceptor):
    def __init__(self, token: str):
        self._metadata = (("authorization", f"Bearer {token}"),)

    def intercept_stream_stream(self, continuation, details, requests):
        details = details._replace(metadata=list(details.metadata or []) + list(self._metadata))
        return continuation(details, requests)


if __name__ == "__main__":
    sys.exit(main())
