"""Gets a token from Signet with Authlib, a standard OAuth 2.0 client, exactly as the README shows.

Reads SIGNET_URL, SIGNET_AGENT_ID and SIGNET_AGENT_SECRET; prints the token response as JSON.
"""
import json
import os

from authlib.integrations.requests_client import OAuth2Session

for method in ("client_secret_basic", "client_secret_post"):
    client = OAuth2Session(
        os.environ["SIGNET_AGENT_ID"],
        os.environ["SIGNET_AGENT_SECRET"],
        scope="read",
        token_endpoint_auth_method=method,
    )
    token = client.fetch_token(os.environ["SIGNET_URL"] + "/oauth2/token", grant_type="client_credentials")
print(json.dumps(token))
