// An operator manages every kind of credential in the Signet Console, in headless Chromium, and
// each change is checked where agents meet it: over HTTP and mutual TLS.
// - Private Key JWT: register an agent with a JWK, add a PEM key, sign assertions with both,
//   add an RSA key pinned to PS384 with an expiry date, revoke the first (refused from then on);
//   a jwks_uri outside the policy is refused, one inside it saved and removed.
// - Mutual TLS with Signet's agent CA: issue a certificate from a CSR, get a token with it,
//   change the binding, revoke the certificate (refused from then on).
// - Self-signed mutual TLS: register with a certificate, get a token, remove it (refused).
// - Settings: rotate the signing key, see the trusted CAs and revocations, create a named admin
//   token (works with the admin API, read-only as auditor) and revoke it, change the password.
//
//   CONSOLE_URL=… TLS_URL=… SERVER_CA=… CSR=… CSR_KEY=… SELF_SIGNED_CERT=… SELF_SIGNED_KEY=…
//   ADMIN_PASSWORD=… SCREENSHOT_DIR=… CHROMIUM=/usr/bin/chromium node credentials.mjs

import assert from "node:assert/strict";
import { constants, generateKeyPairSync, randomUUID, sign } from "node:crypto";
import { readFileSync } from "node:fs";
import https from "node:https";
import { chromium } from "playwright-core";

const base = process.env.CONSOLE_URL;
const tlsUrl = process.env.TLS_URL;
const serverCa = readFileSync(process.env.SERVER_CA);
const password = process.env.ADMIN_PASSWORD;
const shots = process.env.SCREENSHOT_DIR;

/// A client assertion (RFC 7523) signed with an EC P-256 key (ES256) or an RSA key (PS384).
function assertion(privateKey, kid, agentId, alg) {
  const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64({ alg, typ: "JWT", kid })}.${b64({
    iss: agentId, sub: agentId, aud: `${base}/oauth2/token`, jti: randomUUID(), iat: now, exp: now + 60,
  })}`;
  const signature = alg === "PS384"
    ? sign("sha384", Buffer.from(input), { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 48 })
    : sign("sha256", Buffer.from(input), { key: privateKey, dsaEncoding: "ieee-p1363" });
  return `${input}.${signature.toString("base64url")}`;
}

async function jwtToken(privateKey, kid, agentId, alg = "ES256") {
  const response = await fetch(`${base}/oauth2/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "client_credentials",
      client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
      client_assertion: assertion(privateKey, kid, agentId, alg),
    }),
  });
  return response.status;
}

/// A token request over mutual TLS presenting `cert` (PEM) with `key`; resolves to the status.
function mtlsToken(agentId, key, cert) {
  const body = new URLSearchParams({ grant_type: "client_credentials", client_id: agentId }).toString();
  return new Promise((resolve, reject) => {
    const request = https.request(`${tlsUrl}/oauth2/token`, {
      method: "POST", key, cert, ca: serverCa, agent: false,
      headers: { "content-type": "application/x-www-form-urlencoded", "content-length": Buffer.byteLength(body) },
    }, (response) => {
      response.resume();
      response.on("end", () => resolve(response.statusCode));
    });
    request.on("error", reject);
    request.end(body);
  });
}

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM, args: ["--no-sandbox"] });
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const shot = (name) => page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
  const signIn = async (pw) => {
    await page.goto(`${base}/console/login`);
    await page.getByLabel("Username").fill("admin");
    await page.getByLabel("Password").fill(pw);
    await page.getByRole("button", { name: "Sign in" }).click();
  };
  const register = async (name, method) => {
    await page.goto(`${base}/console/agents`);
    await page.getByLabel("Name", { exact: true }).fill(name);
    await page.getByLabel("Authentication method").selectOption(method);
  };
  const agentIdOnPage = async () => (await page.locator("dl.facts code, main p a code").first().textContent()).trim();
  await signIn(password);
  await page.getByRole("heading", { name: "Agents" }).waitFor();

  // Private Key JWT: registered with a JWK pasted into the form; it lands on its Credentials tab.
  const first = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const jwk = { ...first.publicKey.export({ format: "jwk" }), kid: "first" };
  await register("jwt-agent", "private_key_jwt");
  // Only the chosen method's fields show.
  assert.equal(await page.getByLabel("Public key").isVisible(), true);
  assert.equal(await page.getByLabel("Value", { exact: true }).isVisible(), false);
  await page.getByLabel("Public key").fill(JSON.stringify(jwk));
  await page.getByRole("button", { name: "Register agent" }).click();
  await page.getByText("Agent registered. Its credentials are on this tab.").waitFor();
  await page.getByRole("heading", { name: "Public keys" }).waitFor();
  await page.getByRole("cell", { name: "first" }).first().waitFor();
  await page.getByRole("link", { name: "Overview" }).click();
  const jwtAgent = await agentIdOnPage();
  assert.match(jwtAgent, /^agt_/);
  assert.equal(await jwtToken(first.privateKey, "first", jwtAgent), 200, "the JWK signs assertions");

  // A second key as PEM, with its own key ID.
  const second = generateKeyPairSync("ec", { namedCurve: "P-256" });
  await page.getByRole("link", { name: "Credentials" }).click();
  await page.getByLabel("Public key").fill(second.publicKey.export({ type: "spki", format: "pem" }));
  await page.getByLabel("Key ID").fill("second");
  await page.getByRole("button", { name: "Add key" }).click();
  await page.getByText("Key added: second.").waitFor();
  assert.equal(await jwtToken(second.privateKey, "second", jwtAgent), 200, "the PEM key works");

  // An RSA key pinned to PS384 (one of the algorithms the API takes), refused after a date.
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  await page.getByLabel("Public key").fill(rsa.publicKey.export({ type: "spki", format: "pem" }));
  await page.getByLabel("Key ID").fill("rsa-pss");
  await page.getByLabel("Algorithm").selectOption("PS384");
  await page.getByLabel("Refused after").fill("2099-12-31");
  await page.getByRole("button", { name: "Add key" }).click();
  await page.getByText("Key added: rsa-pss.").waitFor();
  const rsaRow = page.getByRole("row").filter({ hasText: "rsa-pss" });
  await rsaRow.getByRole("cell", { name: "PS384" }).waitFor();
  await rsaRow.getByRole("cell", { name: /^2099-12-31/ }).waitFor();
  assert.equal(await jwtToken(rsa.privateKey, "rsa-pss", jwtAgent, "PS384"), 200, "the PS384 key works");

  // A key that is not one says why; nothing is added.
  await page.getByLabel("Public key").fill("not a key");
  await page.getByRole("button", { name: "Add key" }).click();
  await page.getByRole("alert").filter({ hasText: "paste a JWK" }).waitFor();

  // Revoke the first key behind a confirmation: refused from the next request on.
  await page.getByRole("button", { name: "Revoke key first" }).click();
  await page.getByRole("dialog").getByText("Assertions signed with this key are refused").waitFor();
  await page.getByRole("dialog").getByRole("button", { name: "Revoke key" }).click();
  await page.getByText("Key first revoked").waitFor();
  assert.equal(await jwtToken(first.privateKey, "first", jwtAgent), 401, "the revoked key is refused");
  assert.equal(await jwtToken(second.privateKey, "second", jwtAgent), 200, "the other key still works");
  // A jwks_uri outside the fetch policy is refused with the reason.
  await page.getByLabel("JWKS URI").fill("http://127.0.0.1:9/jwks.json");
  await page.getByRole("button", { name: "Save JWKS URI" }).click();
  await page.getByRole("alert").filter({ hasText: "jwks_uri" }).waitFor();
  // One on an allowed host is saved (its keys are fetched when an assertion names them), and
  // removed again by saving the field empty.
  await page.getByLabel("JWKS URI").fill("https://keys.example.test/billing/jwks.json");
  await page.getByRole("button", { name: "Save JWKS URI" }).click();
  await page.getByText("Keys are also fetched from https://keys.example.test/billing/jwks.json.").waitFor();
  assert.equal(await page.getByLabel("JWKS URI").inputValue(), "https://keys.example.test/billing/jwks.json");
  await shot("10-credentials-keys");
  await page.getByLabel("JWKS URI").fill("");
  await page.getByRole("button", { name: "Save JWKS URI" }).click();
  await page.getByText("The jwks_uri is removed.").waitFor();
  assert.equal(await jwtToken(second.privateKey, "second", jwtAgent), 200, "the registered key still works");

  // Mutual TLS with Signet's agent CA: issue a certificate from a CSR and use it.
  await register("mtls-agent", "tls_client_auth");
  await page.getByRole("button", { name: "Register agent" }).click();
  await page.getByRole("heading", { name: "Certificates issued by Signet" }).waitFor();
  await page.getByText("Bound to URI (SAN)").waitFor();
  await shot("11-credentials-mtls");
  await page.getByLabel("Certificate signing request").fill(process.env.CSR);
  await page.getByLabel("Valid for").fill("7");
  await page.getByRole("button", { name: "Issue certificate" }).click();
  await page.getByRole("heading", { name: "Certificate issued" }).waitFor();
  await shot("12-certificate-issued");
  const certificate = await page.getByLabel("Certificate", { exact: true }).inputValue();
  assert.match(certificate, /BEGIN CERTIFICATE/);
  const mtlsAgent = (await page.locator("main p a code").first().textContent()).trim();
  assert.equal(await mtlsToken(mtlsAgent, process.env.CSR_KEY, certificate), 200, "the issued certificate works");

  // Binding another name refuses the certificate (it does not carry that name); binding back works.
  await page.getByRole("link", { name: "Back to the agent" }).click();
  await page.getByLabel("Certificate field").selectOption("tls_client_auth_san_dns");
  await page.getByLabel("Value", { exact: true }).fill("billing.example");
  await page.getByRole("button", { name: "Save binding" }).click();
  await page.getByText("Bound to DNS name (SAN)").waitFor();
  assert.equal(await mtlsToken(mtlsAgent, process.env.CSR_KEY, certificate), 401, "the name no longer matches");
  await page.getByLabel("Certificate field").selectOption("tls_client_auth_san_uri");
  await page.getByLabel("Value", { exact: true }).fill(`urn:signet:agent:${mtlsAgent}`);
  await page.getByRole("button", { name: "Save binding" }).click();
  await page.getByText("Bound to URI (SAN)").waitFor();
  assert.equal(await mtlsToken(mtlsAgent, process.env.CSR_KEY, certificate), 200, "bound again");

  // Revoke the issued certificate, with a reason: refused at once.
  await page.getByRole("button", { name: /^Revoke certificate/ }).click();
  await page.getByRole("dialog").getByLabel("Reason").fill("laptop lost");
  await page.getByRole("dialog").getByRole("button", { name: "Revoke certificate" }).click();
  await page.getByText("Certificate revoked").waitFor();
  await page.getByRole("cell", { name: "revoked" }).waitFor();
  assert.equal(await mtlsToken(mtlsAgent, process.env.CSR_KEY, certificate), 401, "the revoked certificate is refused");

  // Self-signed mutual TLS: registered with its certificate, used, removed.
  await register("self-signed-agent", "self_signed_tls_client_auth");
  await page.getByLabel("Certificate (PEM").fill(process.env.SELF_SIGNED_CERT);
  await page.getByRole("button", { name: "Register agent" }).click();
  await page.getByRole("heading", { name: "Registered certificates" }).waitFor();
  await page.getByText("CN=self-signed-agent").first().waitFor();
  await page.getByRole("link", { name: "Overview" }).click();
  const selfSigned = await agentIdOnPage();
  const selfCert = process.env.SELF_SIGNED_CERT;
  const selfKey = process.env.SELF_SIGNED_KEY;
  assert.equal(await mtlsToken(selfSigned, selfKey, selfCert), 200, "the registered certificate works");
  await page.getByRole("link", { name: "Credentials" }).click();
  await page.getByRole("button", { name: /^Remove certificate/ }).click();
  await page.getByText("Certificate removed").waitFor();
  assert.equal(await mtlsToken(selfSigned, selfKey, selfCert), 401, "the removed certificate is refused");
  await page.getByLabel("Certificate (PEM").fill(selfCert);
  await page.getByRole("button", { name: "Register certificate" }).click();
  await page.getByText("Certificate registered.").waitFor();
  assert.equal(await mtlsToken(selfSigned, selfKey, selfCert), 200, "registered again");

  // The list shows each agent's method and when it last authenticated.
  await page.goto(`${base}/console/agents`);
  await page.getByRole("row", { name: /jwt-agent .*private_key_jwt/ }).waitFor();
  assert.equal(await page.getByRole("row", { name: /mtls-agent .*never/ }).count(), 0, "mtls-agent authenticated");
  await shot("13-agents");

  // Settings → signing keys: a planned rotation publishes the next key.
  await page.getByRole("link", { name: "Settings" }).click();
  await page.getByRole("link", { name: "Signing keys" }).click();
  await page.getByRole("cell", { name: "active", exact: true }).waitFor();
  await page.getByRole("button", { name: "Rotate signing key" }).click();
  await page.getByText("Rotation published").waitFor();
  await page.getByRole("cell", { name: "next", exact: true }).waitFor();
  await shot("14-signing-keys");

  // Trusted CAs: Signet's agent CA, and the certificate revoked above.
  await page.getByRole("link", { name: "Trusted CAs" }).click();
  await page.getByRole("cell", { name: "Signet agent CA", exact: true }).waitFor();
  await page.getByRole("cell", { name: "laptop lost" }).waitFor();

  // Admin tokens: a named auditor token, shown once, reads the admin API and may not write;
  // revoked, it stops working.
  await page.getByRole("link", { name: "Admin tokens" }).click();
  await page.getByLabel("Name").fill("ci-reader");
  await page.getByLabel("Role").selectOption("auditor");
  await page.getByRole("button", { name: "Create token" }).click();
  await page.getByRole("heading", { name: "Admin token created" }).waitFor();
  const adminToken = await page.getByLabel("Admin token").inputValue();
  assert.match(adminToken, /^signet_at_/);
  await shot("15-admin-token-created");
  const api = (method, body) => fetch(`${base}/api/v1/agents`, {
    method,
    headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
    body: body && JSON.stringify(body),
  });
  assert.equal((await api("GET")).status, 200, "the auditor token reads");
  assert.equal((await api("POST", { name: "nope" })).status, 403, "the auditor token may not write");
  await page.getByRole("link", { name: "Back to admin tokens" }).click();
  await page.getByRole("row", { name: /ci-reader auditor active/ }).waitFor();
  await page.getByRole("button", { name: "Revoke ci-reader" }).click();
  await page.getByText("Admin token ci-reader revoked").waitFor();
  assert.equal((await api("GET")).status, 401, "the revoked token is refused");

  // Your password: the current one is asked for; the new one works, the old one no longer does.
  const newPassword = "a-new-console-password-2";
  await page.getByRole("link", { name: "Your password" }).click();
  await page.getByLabel("Current password").fill("wrong-password-123");
  await page.locator("#new-password").fill(newPassword);
  await page.getByLabel("New password again").fill(newPassword);
  await page.getByRole("button", { name: "Change password" }).click();
  await page.getByText("the current password is wrong").waitFor();
  await page.getByLabel("Current password").fill(password);
  await page.locator("#new-password").fill(newPassword);
  await page.getByLabel("New password again").fill(newPassword);
  await page.getByRole("button", { name: "Change password" }).click();
  await page.getByText("Password changed").waitFor();
  await page.getByRole("button", { name: "Sign out" }).click();
  await signIn(password);
  await page.getByText("Wrong username or password.").waitFor();
  await signIn(newPassword);
  await page.getByRole("heading", { name: "Agents" }).waitFor();

  // The Audit page answers "which agents failed to authenticate in the last hour, and why".
  await page.getByRole("link", { name: "Audit" }).click();
  await page.getByLabel("Event").fill("token_request");
  await page.getByLabel("Outcome").selectOption("failure");
  await page.getByLabel("Time").selectOption("1h");
  await page.getByRole("button", { name: "Filter" }).click();
  await page.getByRole("cell", { name: jwtAgent }).first().waitFor();
  assert.equal(await page.getByRole("cell", { name: "success", exact: true }).count(), 0);
  await shot("16-audit-failures");
  console.log("credentials flow passed");
} finally {
  await browser.close();
}
