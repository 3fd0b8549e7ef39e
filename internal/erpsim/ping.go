package erpsim

import "net/http"

// PingPath is the ERP API's harmless read: GET answers 200 {"ok": true} to a
// good bearer token and 401 to a bad one, and changes nothing. config check
// calls it to prove the base URL and the token before a run needs them.
const PingPath = "/api/ping"

// ping answers GET /api/ping (the fault knobs apply before it, as to every call).
func (s *Sim) ping(r *http.Request) answer {
	if r.Header.Get("Authorization") != "Bearer "+s.token {
		return errAnswer(http.StatusUnauthorized, "missing or bad bearer token")
	}
	return answer{status: http.StatusOK, body: map[string]bool{"ok": true}}
}
