  // -- the API key, shared by the wallboard and the reports page -----------------
  // It comes from the URL fragment (never sent to any server), then stays in this
  // tab's sessionStorage: one key per tab for both pages. Expects ``S`` with
  // ``key`` and ``tenant``.
  const KEY_STORE = "callstate-wallboard-key";
  class AuthError extends Error {}

  function readConfig() {
    const params = new URLSearchParams(location.hash.replace(/^#/, ""));
    const key = params.get("key");
    if (key) sessionStorage.setItem(KEY_STORE, key);
    params.delete("key");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
    S.key = sessionStorage.getItem(KEY_STORE) || "";
    S.tenant = params.get("tenant") || "";
  }

  // What a refused key means, in words for whoever stands at the screen (the API's
  // own error text is for programs).
  const REFUSED = {
    401: "That key was not accepted. Check it for a typo, or ask whoever runs callstate for a read-only key for this screen.",
    403: "That key may not show this page: it belongs to another tenant. Use a key of this tenant, or remove #tenant=… from the address.",
  };
  function refusedKey(status) {
    return status === 401 || status === 403 ? new AuthError(REFUSED[status]) : null;
  }
