// The operator's first session in the Signet Console, in headless Chromium: sign in, register
// an agent and read its one-time secret from the page, get a token with it, regenerate the
// secret in the Credentials tab (confirming the documented warning), see the old secret fail
// and the new one work, find the failure in the Activity tab, check that a form without its
// CSRF token (or, for signing in, posted from another site) is refused, and sign out. Screenshots go to SCREENSHOT_DIR.
//
//   CONSOLE_URL=http://127.0.0.1:PORT ADMIN_PASSWORD=… SCREENSHOT_DIR=… CHROMIUM=/usr/bin/chromium \
//     node console.mjs

import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const base = process.env.CONSOLE_URL;
const password = process.env.ADMIN_PASSWORD;
const shots = process.env.SCREENSHOT_DIR;

async function token(agentId, secret) {
  const response = await fetch(`${base}/oauth2/token`, {
    method: "POST",
    headers: {
      authorization: "Basic " + Buffer.from(`${agentId}:${secret}`).toString("base64"),
      "content-type": "application/x-www-form-urlencoded",
    },
    body: "grant_type=client_credentials",
  });
  return response.status;
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM,
  args: ["--no-sandbox"],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const shot = (name) => page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });

  // A page on another site that posts the sign-in form (login CSRF: the visitor would be
  // signed in as whoever's password the page holds) is refused; no session is set.
  const elsewhere = await browser.newContext();
  const attacker = await elsewhere.newPage();
  await attacker.route("http://attacker.example/**", (route) =>
    route.fulfill({
      contentType: "text/html",
      body: `<form method="post" action="${base}/console/login">
        <input name="username" value="admin"><input name="password" value="${password}">
        </form><script>document.forms[0].submit()</script>`,
    }),
  );
  const [posted] = await Promise.all([
    attacker.waitForResponse((r) => r.url().endsWith("/console/login")),
    attacker.goto("http://attacker.example/"),
  ]);
  assert.equal(posted.status(), 403);
  await attacker.getByText("This form was sent from another site.").waitFor();
  assert.deepEqual(await elsewhere.cookies(base), [], "no session from another site's form");
  await elsewhere.close();

  // Not signed in: sent to the sign-in page. A wrong password says so.
  await page.goto(`${base}/console`);
  assert.match(page.url(), /\/console\/login$/);
  await page.getByLabel("Username").fill("admin");
  await page.getByLabel("Password").fill("not-the-password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("Wrong username or password.").waitFor();
  await shot("01-sign-in");
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Agents" }).waitFor();

  // The session cookie cannot be read by scripts and is not sent cross-site.
  const [cookie] = await context.cookies();
  assert.equal(cookie.name, "signet_session");
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, "Strict");

  // Register an agent; its secret is on the page, once, with a warning and a copy button.
  await page.getByLabel("Name").fill("billing-agent");
  await page.getByLabel("Scopes").fill("invoices:read");
  await page.getByRole("button", { name: "Register agent" }).click();
  await page.getByRole("heading", { name: "Agent registered" }).waitFor();
  await page.getByText("It will not be shown again").waitFor();
  const oldSecret = await page.getByLabel("Agent Secret").inputValue();
  const agentId = (await page.locator("main code").first().textContent()).trim();
  assert.match(agentId, /^agt_/);
  assert.match(oldSecret, /^signet_/);
  await page.getByRole("button", { name: "Copy" }).waitFor();
  await shot("02-agent-registered");
  assert.equal(await token(agentId, oldSecret), 200, "the new secret gets a token");

  // The agent is listed under Agents in the main menu; its page has the Credentials tab with
  // Regenerate under Agent Secret (the documented steps).
  await page.getByRole("navigation", { name: "Main menu" }).getByRole("link", { name: "Agents" }).click();
  await page.getByRole("link", { name: "billing-agent" }).click();
  await page.getByRole("link", { name: "Credentials" }).click();
  await page.getByRole("heading", { name: "Agent Secret" }).waitFor();
  await page.getByRole("button", { name: "Regenerate", exact: true }).click();
  const dialog = page.getByRole("dialog");
  await dialog.getByText("make sure to update all services that are using the previous credentials").waitFor();
  await shot("03-regenerate-warning");
  // Cancel changes nothing.
  await dialog.getByRole("button", { name: "Cancel" }).click();
  assert.equal(await token(agentId, oldSecret), 200, "cancel kept the secret");
  await page.getByRole("button", { name: "Regenerate", exact: true }).click();
  await dialog.getByRole("button", { name: "Regenerate secret" }).click();
  await page.getByRole("heading", { name: "Agent secret regenerated" }).waitFor();
  const newSecret = await page.getByLabel("Agent Secret").inputValue();
  assert.notEqual(newSecret, oldSecret);
  await shot("04-secret-regenerated");
  assert.equal(await token(agentId, oldSecret), 401, "the old secret fails");
  assert.equal(await token(agentId, newSecret), 200, "the new secret works");

  // Regenerated with a grace period, the previous secret keeps working until it ends, and the
  // page says until when.
  await page.goto(`${base}/console/agents/${agentId}?tab=credentials`);
  await page.getByRole("button", { name: "Regenerate", exact: true }).click();
  await dialog.getByLabel("The old secret stops working").selectOption({ label: "in 1 hour" });
  await dialog.getByRole("button", { name: "Regenerate secret" }).click();
  await page.getByRole("heading", { name: "Agent secret regenerated" }).waitFor();
  await page.getByText(/The previous secret keeps working until \d{4}-\d\d-\d\dT/).waitFor();
  const graceSecret = await page.getByLabel("Agent Secret").inputValue();
  assert.equal(await token(agentId, newSecret), 200, "the previous secret works in its grace period");
  assert.equal(await token(agentId, graceSecret), 200, "and so does the new one");
  await page.goto(`${base}/console/agents/${agentId}?tab=credentials`);
  await page.getByText(/keeps working until/).waitFor();
  await shot("04b-grace-period");

  // The failed attempt with the old secret is in the agent's Activity tab, with its reason.
  await page.goto(`${base}/console/agents/${agentId}`);
  await page.getByRole("link", { name: "Activity" }).click();
  await page.getByRole("cell", { name: "stale_secret" }).first().waitFor();
  await page.getByRole("cell", { name: "agent_secret_regenerated" }).first().waitFor();
  await page.getByRole("cell", { name: "console:admin" }).first().waitFor();
  await shot("05-activity");

  // Overview: edit the settings, disable (refused at once), enable again.
  await page.getByRole("link", { name: "Overview" }).click();
  await page.getByLabel("Scopes").fill("invoices:read invoices:write");
  await page.getByLabel("Description").fill("Reads and writes invoices");
  await page.getByRole("button", { name: "Save changes" }).click();
  await page.getByText("invoices:read invoices:write").first().waitFor();
  await page.getByRole("button", { name: "Disable agent" }).click();
  await page.getByRole("button", { name: "Enable agent" }).waitFor();
  assert.equal(await token(agentId, newSecret), 401, "a disabled agent gets no token");
  await page.getByRole("button", { name: "Enable agent" }).click();
  await page.getByRole("button", { name: "Disable agent" }).waitFor();
  assert.equal(await token(agentId, newSecret), 200, "enabled again");

  // The Audit page filters the whole log.
  await page.getByRole("link", { name: "Audit" }).click();
  await page.getByLabel("Outcome").selectOption("failure");
  await page.getByLabel("Reason").fill("stale_secret");
  await page.getByRole("button", { name: "Filter" }).click();
  await page.getByRole("cell", { name: "stale_secret" }).first().waitFor();
  assert.equal(await page.getByRole("cell", { name: "success", exact: true }).count(), 0);

  // The tamper check: the log is intact; its head, checked later as the anchor, still holds.
  await page.getByRole("link", { name: "Check the log for tampering" }).click();
  await page.getByText("Audit log intact").waitFor();
  const head = (await page.locator("#head").textContent()).trim();
  assert.match(head, /^\d+:[A-Za-z0-9_-]{43}$/);
  await page.getByLabel("Anchor").fill(head);
  await page.getByRole("button", { name: "Check" }).click();
  await page.getByText("and it still reaches the anchor").waitFor();
  await shot("05b-tamper-check");
  const badAnchor = await page.goto(`${base}/console/audit/verify?anchor=not-an-anchor`);
  assert.equal(badAnchor.status(), 400, "a malformed anchor is refused");
  await page.getByText("an anchor is ID:HASH").waitFor();

  // Using the old secret raised a stale_credential alert (in the background): it is listed,
  // the agent carries a marker in the list, and an admin acknowledges it.
  let listed = false;
  for (let i = 0; i < 50 && !listed; i++) {
    await page.goto(`${base}/console/alerts`);
    listed = (await page.getByRole("cell", { name: "stale_credential" }).count()) > 0;
    if (!listed) await page.waitForTimeout(100);
  }
  assert.ok(listed, "the stale_credential alert is listed");
  await page.goto(`${base}/console/agents/${agentId}?tab=alerts`);
  await page.getByRole("cell", { name: "stale_credential" }).waitFor();
  await page.goto(`${base}/console/agents`);
  await page.getByText("stale credential in use").waitFor();
  await page.goto(`${base}/console/alerts`);
  await shot("06-alerts");
  await page.getByRole("button", { name: "Acknowledge" }).first().click();
  await page.getByText(/acknowledged\./).waitFor();

  // A form posted without the session's CSRF token is refused.
  const forged = await page.request.post(`${base}/console/agents/${agentId}/secret/regenerate`, {
    form: { grace_period_seconds: "0" },
  });
  assert.equal(forged.status(), 403);
  assert.equal(await token(agentId, newSecret), 200, "the refused form changed nothing");
  // A form with the right token but a missing field says so (400), it does not fail.
  const csrf = await page.locator('form.who input[name="csrf_token"]').inputValue();
  const incomplete = await page.request.post(`${base}/console/agents`, { form: { csrf_token: csrf } });
  assert.equal(incomplete.status(), 400);
  assert.match(await incomplete.text(), /The form is incomplete or malformed/);

  // Delete an agent, after a confirmation.
  await page.goto(`${base}/console/agents`);
  await page.getByLabel("Name").fill("short-lived");
  await page.getByRole("button", { name: "Register agent" }).click();
  await page.getByRole("heading", { name: "Agent registered" }).waitFor();
  await page.locator("main a code").first().click();
  await page.getByRole("button", { name: "Delete agent" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Delete for good" }).click();
  await page.getByRole("heading", { name: "Agents" }).waitFor();
  assert.equal(await page.getByRole("link", { name: "short-lived" }).count(), 0);

  // Settings: add a read-only user.
  await page.getByRole("link", { name: "Settings" }).click();
  await page.getByLabel("Username").fill("reader");
  await page.getByLabel("Role").selectOption("auditor");
  await page.getByLabel("Password").fill("reader-password-1");
  await page.getByRole("button", { name: "Add user" }).click();
  await page.getByText("User reader added with the auditor role.").waitFor();
  await shot("07-users");

  // Sign out: the session is over, also for a request that replays its cookie.
  await page.goto(`${base}/console/agents`);
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { name: "Sign in to Signet" }).waitFor();
  const replay = await fetch(`${base}/console/agents`, {
    headers: { cookie: `signet_session=${cookie.value}` },
    redirect: "manual",
  });
  assert.equal(replay.status, 303);
  assert.match(replay.headers.get("location"), /\/console\/login$/);

  // The auditor sees the pages but no Regenerate button and no registration form, and a
  // regenerate POST with its own valid CSRF token is refused.
  await page.getByLabel("Username").fill("reader");
  await page.getByLabel("Password").fill("reader-password-1");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Agents" }).waitFor();
  assert.equal(await page.getByRole("button", { name: "Register agent" }).count(), 0);
  await page.goto(`${base}/console/agents/${agentId}?tab=credentials`);
  await page.getByRole("heading", { name: "Agent Secret" }).waitFor();
  assert.equal(await page.getByRole("button", { name: "Regenerate" }).count(), 0);
  await shot("08-auditor-credentials");
  const auditorCsrf = await page.locator('form.who input[name="csrf_token"]').inputValue();
  const refused = await page.request.post(`${base}/console/agents/${agentId}/secret/regenerate`, {
    form: { csrf_token: auditorCsrf, grace_period_seconds: "0" },
  });
  assert.equal(refused.status(), 403);
  assert.equal(await token(agentId, newSecret), 200, "the auditor changed nothing");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { name: "Sign in to Signet" }).waitFor();
  console.log("console flow passed");
} finally {
  await browser.close();
}
