package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/erpsim"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
)

func cmdSim(ctx context.Context, args []string, e *env) int {
	fs := newFlagSet("sim", `sim [--zuora-addr ADDR] [--erp-addr ADDR] [--seed N] [--from T --to T] [knobs]

Serves a simulated Zuora tenant and a simulated ERP over HTTP until interrupted, so the pipeline
(or curl) can be pointed at them. Every fault knob below is off by default.`)
	zuoraAddr := fs.String("zuora-addr", "127.0.0.1:8081", "address of the Zuora simulator")
	erpAddr := fs.String("erp-addr", "127.0.0.1:8082", "address of the ERP simulator")
	seed := fs.Int64("seed", 1, "seed of the generated tenant")
	var from, to timeFlag
	fs.Var(&from, "from", "start of the tenant's generated activity (RFC3339; default 3 hours ago)")
	fs.Var(&to, "to", "end of the tenant's generated activity (RFC3339; default 10 minutes ago)")
	zo := zuorasim.Options{}
	zo.RegisterFlags(fs)
	v := zuorasim.DefaultVolume()
	v.RegisterFlags(fs)
	eo := erpsim.Options{}
	eo.RegisterFlags(fs)
	if code, ok := parse(fs, args, e); !ok {
		return code
	}
	now := time.Now().UTC()
	if from.t.IsZero() {
		from.t = now.Add(-3 * time.Hour).Truncate(time.Hour)
	}
	if to.t.IsZero() {
		to.t = now.Add(-10 * time.Minute)
	}
	if !from.t.Before(to.t) {
		return fail(e, &pipeline.ConfigError{Msg: "--from must be before --to"})
	}
	zs := zuorasim.New(zo)
	zs.Load(zuorasim.Generate(*seed, v, from.t, to.t))
	es := erpsim.New(eo)

	errc := make(chan error, 2)
	servers, addrs, err := serveAll(errc, []simServer{{*zuoraAddr, zs}, {*erpAddr, es}})
	if err != nil {
		return fail(e, err)
	}
	*zuoraAddr, *erpAddr = addrs[0], addrs[1]
	fmt.Fprintf(e.stdout, `Zuora simulator on http://%s (activity %s to %s, seed %d)
ERP simulator on   http://%s

Point the pipeline at them:
  export ZUORA_BASE_URL=http://%s ZUORA_CLIENT_ID=%s ZUORA_CLIENT_SECRET=%s
  export ERP_BASE_URL=http://%s ERP_TOKEN=%s
  zuora-erp-etl run --since %s
`, *zuoraAddr, from.t.Format(time.RFC3339), to.t.Format(time.RFC3339), *seed, *erpAddr,
		*zuoraAddr, zo.ClientIDOrDefault(), zo.ClientSecretOrDefault(), *erpAddr, eo.TokenOrDefault(), from.t.Format(time.RFC3339))
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return fail(e, err)
		}
	}
	for _, s := range servers {
		s.Close()
	}
	return exitOK
}

// simServer is one simulator and the address it is to listen on.
type simServer struct {
	addr string
	h    http.Handler
}

// serveAll serves each simulator on its address, every Serve's end sent to
// errc, and returns the servers and the addresses as bound (a :0 port
// becomes the real one). When one cannot listen, those started are closed.
func serveAll(errc chan<- error, sims []simServer) ([]*http.Server, []string, error) {
	var servers []*http.Server
	var addrs []string
	for _, s := range sims {
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			for _, srv := range servers {
				srv.Close()
			}
			return nil, nil, &pipeline.ConfigError{Msg: fmt.Sprintf("listen on %s: %v", s.addr, err)}
		}
		srv := &http.Server{Handler: s.h, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, srv)
		addrs = append(addrs, ln.Addr().String())
		go func() { errc <- srv.Serve(ln) }()
	}
	return servers, addrs, nil
}
