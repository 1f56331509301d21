"""The web plumbing every feature shares: keys and scopes, error answers, the
route helper, dump plans, Server-Sent Events, the access log and the server."""
