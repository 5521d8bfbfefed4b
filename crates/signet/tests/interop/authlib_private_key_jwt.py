"""Gets a token from Signet with Authlib's private_key_jwt support (RFC 7523).

Reads SIGNET_URL, SIGNET_AGENT_ID and SIGNET_AGENT_KEY_FILE (a PEM private key, EC P-256);
prints the token response as JSON.

Authlib signs assertions valid for an hour by default, longer than Signet accepts (300 s unless
SIGNET_CLIENT_ASSERTION_MAX_LIFETIME says otherwise), and it stores the jti it generates in the
claims dict it was given, so the auth method is built afresh, with a short exp, for each fetch.
"""
import json
import os
import time

from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc.jwk import ECKey

token_endpoint = os.environ["SIGNET_URL"] + "/oauth2/token"
with open(os.environ["SIGNET_AGENT_KEY_FILE"]) as f:
    private_key = ECKey.import_key(f.read())


def fetch():
    auth = PrivateKeyJWT(token_endpoint, alg="ES256", claims={"exp": int(time.time()) + 60})
    client = OAuth2Session(os.environ["SIGNET_AGENT_ID"], private_key, token_endpoint_auth_method=auth, scope="read")
    return client.fetch_token(token_endpoint, grant_type="client_credentials")


fetch()
print(json.dumps(fetch()))
