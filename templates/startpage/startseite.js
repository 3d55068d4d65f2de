// The practices' start pages (smartpraxx-provision): sign in through the practice's realm
// with the authorization code flow and PKCE (S256) as a public client, greet the person by
// name and show the tiles of her role. The ID token stays in this tab's sessionStorage;
// nothing about the person leaves the browser except towards her practice's realm.
"use strict";
(function () {
  const cfg = JSON.parse(document.getElementById("startseite-config").textContent);
  if (cfg.suspended) { return; }  // the page shows the notice; the realm's logins are off
  const store = window.sessionStorage;
  const key = "smartpraxx-startseite:" + cfg.praxisname;
  const greeting = document.getElementById("gruss");
  const endpoint = (name) => cfg.issuer + "/protocol/openid-connect/" + name;

  function b64url(bytes) {
    let s = "";
    bytes.forEach((b) => { s += String.fromCharCode(b); });
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function random() { return b64url(crypto.getRandomValues(new Uint8Array(32))); }
  function claimsOf(jwt) {
    const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const text = new TextDecoder().decode(Uint8Array.from(atob(part), (c) => c.charCodeAt(0)));
    return JSON.parse(text);
  }
  function fail(message) {
    greeting.textContent = message;
  }

  async function login() {
    const verifier = random();
    const state = random();
    const nonce = random();
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
    store.setItem(key + ":pending", JSON.stringify({ verifier, state, nonce }));
    const params = new URLSearchParams({
      client_id: cfg.client_id, response_type: "code", scope: "openid profile",
      redirect_uri: cfg.page_url, state, nonce,
      code_challenge: b64url(new Uint8Array(digest)), code_challenge_method: "S256",
    });
    window.location.assign(endpoint("auth") + "?" + params.toString());
  }

  async function finish(query) {
    const pending = JSON.parse(store.getItem(key + ":pending") || "null");
    store.removeItem(key + ":pending");
    window.history.replaceState(null, "", cfg.page_url);
    if (!pending || query.get("state") !== pending.state) {
      return fail("Die Anmeldung ist abgelaufen. Bitte laden Sie die Seite neu.");
    }
    const exchange = () => fetch(endpoint("token"), {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code", code: query.get("code"),
        redirect_uri: cfg.page_url, client_id: cfg.client_id, code_verifier: pending.verifier,
      }),
    });
    let answer;
    try {
      answer = await exchange();
    } catch (networkError) {
      // no answer at all (e.g. the device's network changed meanwhile): try once more; a
      // code that did reach the realm is refused the second time and ends below
      await new Promise((resolve) => setTimeout(resolve, 500));
      answer = await exchange();
    }
    if (!answer.ok) {
      return fail("Die Anmeldung ist fehlgeschlagen. Bitte laden Sie die Seite neu.");
    }
    const tokens = await answer.json();
    const claims = claimsOf(tokens.id_token);
    const now = Date.now() / 1000;
    // The token came straight from the realm's token endpoint over TLS (OIDC Core 3.1.3.7);
    // issuer, audience, expiry and nonce are still checked before anything is shown.
    const audience = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (claims.iss !== cfg.issuer || !audience.includes(cfg.client_id) || claims.exp < now
        || claims.nonce !== pending.nonce) {
      return fail("Die Anmeldung konnte nicht bestätigt werden. Bitte laden Sie die Seite neu.");
    }
    const session = { id_token: tokens.id_token, name: claims.name || claims.preferred_username,
                      rolle: claims.rolle || "", exp: claims.exp };
    store.setItem(key, JSON.stringify(session));
    show(session);
  }

  function show(session) {
    greeting.textContent = "Guten Tag, " + session.name + "!";
    document.querySelectorAll(".kachel").forEach((tile) => {
      const roles = tile.dataset.rollen.split(" ").filter(Boolean);
      if (roles.length && !roles.includes(session.rolle)) { tile.remove(); }
    });
    document.getElementById("kacheln").hidden = false;
    const button = document.getElementById("abmelden");
    button.hidden = false;
    button.addEventListener("click", () => {
      store.removeItem(key);
      const params = new URLSearchParams({
        client_id: cfg.client_id, id_token_hint: session.id_token,
        post_logout_redirect_uri: cfg.page_url,
      });
      window.location.assign(endpoint("logout") + "?" + params.toString());
    });
  }

  const query = new URLSearchParams(window.location.search);
  const saved = JSON.parse(store.getItem(key) || "null");
  if (query.has("error")) {
    fail("Die Anmeldung wurde abgebrochen. Bitte laden Sie die Seite neu.");
  } else if (query.has("code")) {
    finish(query).catch(() => fail("Die Anmeldung ist fehlgeschlagen. Bitte laden Sie die Seite neu."));
  } else if (saved && saved.exp > Date.now() / 1000) {
    show(saved);
  } else {
    login().catch(() => fail("Die Anmeldung ist fehlgeschlagen. Bitte laden Sie die Seite neu."));
  }
})();
