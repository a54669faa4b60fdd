"""A small client for pipe2-authd's gRPC contract, over the stock grpcio package.

Message classes are generated from proto/ with protoc at import time, so the client always
matches the contract in this checkout. Used by scripts/p2a and by the integration tests.
"""
import importlib.util
import os
import subprocess
import sys
import tempfile

import grpc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROTO = os.path.join(ROOT, "proto")
SERVICE = "/pipe2.auth.v1.TokenService/"
HEALTH = "/grpc.health.v1.Health/Check"


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _generate():
    out = tempfile.mkdtemp(prefix="p2a-pygen-")
    subprocess.run(["protoc", "--proto_path=" + PROTO, "--python_out=" + out,
                    "pipe2/auth/v1/token_service.proto", "grpc/health/v1/health.proto"],
                   check=True)
    # the generated 'grpc' package would shadow grpcio: load both modules by file path
    return (_load(os.path.join(out, "pipe2/auth/v1/token_service_pb2.py"), "token_service_pb2"),
            _load(os.path.join(out, "grpc/health/v1/health_pb2.py"), "health_pb2"))


pb, health_pb = _generate()

RESPONSES = {
    "Introspect": pb.IntrospectResponse,
    "IssueToken": pb.IssueTokenResponse,
    "RevokeToken": pb.RevokeTokenResponse,
    "ListTokens": pb.ListTokensResponse,
    "CreateUser": pb.CreateUserResponse,
    "RegisterClient": pb.RegisterClientResponse,
    "PutUser": pb.PutUserResponse,
    "ListGrants": pb.ListGrantsResponse,
    "RevokeGrant": pb.RevokeGrantResponse,
    "RevokeClient": pb.RevokeClientResponse,
    "GetUser": pb.User,
    "SetUserDisabled": pb.SetUserDisabledResponse,
    "ListAuditEvents": pb.ListAuditEventsResponse,
}


class Client:
    """One channel to pipe2-authd. key is the service key sent as a Bearer token."""

    def __init__(self, target, key=None, root_cert=None, server_name=None):
        if root_cert is not None:
            creds = grpc.ssl_channel_credentials(root_certificates=root_cert)
            opts = [("grpc.ssl_target_name_override", server_name)] if server_name else []
            self.channel = grpc.secure_channel(target, creds, options=opts)
        else:
            self.channel = grpc.insecure_channel(target)
        self.key = key

    def close(self):
        self.channel.close()

    def raw(self, path, request_bytes, key=None, timeout=10, response_cls=None, **kw):
        """Sends request_bytes as they are to path; returns the decoded response."""
        key = self.key if key is None else key
        md = [("authorization", "Bearer " + key)] if key else None
        call = self.channel.unary_unary(
            path, request_serializer=lambda b: b,
            response_deserializer=(response_cls.FromString if response_cls else None))
        return call(request_bytes, metadata=md, timeout=timeout, **kw)

    def call(self, method, request, key=None, timeout=10, **kw):
        return self.raw(SERVICE + method, request.SerializeToString(), key=key,
                        timeout=timeout, response_cls=RESPONSES[method], **kw)

    def issue(self, user_id, name, scope="", expires_in=0, **kw):
        return self.call("IssueToken", pb.IssueTokenRequest(
            user_id=user_id, name=name, scope=scope, expires_in_seconds=expires_in), **kw)

    def introspect(self, token, resource="", expected_kind=0, required_scope="", **kw):
        return self.call("Introspect", pb.IntrospectRequest(
            token=token, resource=resource, expected_kind=expected_kind,
            required_scope=required_scope), **kw)

    def list(self, user_id, include_revoked=False, **kw):
        return self.call("ListTokens", pb.ListTokensRequest(
            user_id=user_id, include_revoked=include_revoked), **kw)

    def revoke(self, jti, user_id="", **kw):
        return self.call("RevokeToken", pb.RevokeTokenRequest(jti=jti, user_id=user_id), **kw)

    def create_user(self, username, password, **kw):
        return self.call("CreateUser", pb.CreateUserRequest(username=username, password=password),
                         **kw)

    def register_client(self, redirect_uris, client_name="", method="", scope="",
                        grant_types=(), jwks_uri="", jwks="", resources=(), **kw):
        return self.call("RegisterClient", pb.RegisterClientRequest(
            client_name=client_name, redirect_uris=redirect_uris,
            token_endpoint_auth_method=method, scope=scope, grant_types=list(grant_types),
            jwks_uri=jwks_uri, jwks=jwks, resources=list(resources)), **kw)

    def revoke_client(self, client_id, **kw):
        return self.call("RevokeClient", pb.RevokeClientRequest(client_id=client_id), **kw)

    def put_user(self, user_id, display_name="", **kw):
        return self.call("PutUser", pb.PutUserRequest(user_id=user_id, display_name=display_name),
                         **kw)

    def get_user(self, user_id, **kw):
        return self.call("GetUser", pb.GetUserRequest(user_id=user_id), **kw)

    def set_user_disabled(self, user_id, disabled, **kw):
        return self.call("SetUserDisabled",
                         pb.SetUserDisabledRequest(user_id=user_id, disabled=disabled), **kw)

    def list_grants(self, user_id, **kw):
        return self.call("ListGrants", pb.ListGrantsRequest(user_id=user_id), **kw)

    def revoke_grant(self, user_id, grant_id, **kw):
        return self.call("RevokeGrant", pb.RevokeGrantRequest(user_id=user_id, grant_id=grant_id),
                         **kw)

    def list_audit(self, user_id="", client_id="", types=(), since=0, until=0, page_size=0,
                   page_token="", **kw):
        return self.call("ListAuditEvents", pb.ListAuditEventsRequest(
            user_id=user_id, client_id=client_id, types=list(types), since=since, until=until,
            page_size=page_size, page_token=page_token), **kw)

    def health(self, service="", timeout=2):
        return self.raw(HEALTH, health_pb.HealthCheckRequest(service=service).SerializeToString(),
                        key="", timeout=timeout, response_cls=health_pb.HealthCheckResponse)


def status_name(code):
    return health_pb.HealthCheckResponse.ServingStatus.Name(code)


if __name__ == "__main__":
    sys.exit("use scripts/p2a")
