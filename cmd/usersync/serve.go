package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/api"
	"github.com/usersync/usersync/jobs"
	"github.com/usersync/usersync/server"
	"github.com/usersync/usersync/sqlstore"
	"github.com/usersync/usersync/target/entra"
	"github.com/usersync/usersync/telemetry"
)

func (a *app) serveCommand() *cobra.Command {
	var listen, cert, key, logFormat, scimLogDir, accessLog string
	var noProvisioners, noSchedules bool
	var reconcileEvery time.Duration
	var jobTimeout, rescueAfter time.Duration
	c := &cobra.Command{
		Use:   "serve [--listen ADDR]",
		Short: "Run the usersync service: SCIM 2.0 at /scim/v2, /healthz, /readyz, /metrics, and the provisioners",
		Long: `Run the usersync service until interrupted: SCIM 2.0 at /scim/v2 (bearer API
tokens of administrators), /healthz, /readyz (the directory answers) and
Prometheus metrics at /metrics. Logs are structured (--log-format text or
json) on standard error. With --tls-cert and --tls-key it serves HTTPS. On
SIGINT or SIGTERM it stops accepting connections and finishes the requests
in flight (up to 30 s).

Every schedule (see "usersync schedules") runs as a job: once per due time
however many replicas share the directory, never twice at once, retried
with backoff when it fails, each run recorded ("usersync runs").

Every provisioner (see "usersync provisioners") runs on its schedule and as
soon as the directory changes, so a change reaches Entra in about a second.
Replicas sharing a directory take turns through a lease: one runs a
provisioner at a time.

SCIM serves Users and Groups (create, read, list with filters, PUT, PATCH,
delete) and the discovery endpoints. While the setting
ENABLE_SCIM_REQUEST_LOGGER is Y, each SCIM request and response is written to
a daily file in --scim-log-dir (credentials masked).`,
		Args: cobra.NoArgs,
		RunE: a.withDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
			var handler slog.Handler
			switch logFormat {
			case "text":
				handler = slog.NewTextHandler(a.stderr, nil)
			case "json":
				handler = slog.NewJSONHandler(a.stderr, nil)
			default:
				return usageError{fmt.Errorf("--log-format takes text or json, not %q", logFormat)}
			}
			switch accessLog {
			case server.AccessAll, server.AccessErrors, server.AccessNone:
			default:
				return usageError{fmt.Errorf("--access-log takes all, errors or none, not %q", accessLog)}
			}
			tlsConf, err := loadTLS(cert, key)
			if err != nil {
				return err
			}
			log := slog.New(handler)
			ln, err := listenOn(listen)
			if err != nil {
				return err
			}
			scheme := "http"
			if tlsConf != nil {
				scheme = "https"
			}
			log.Info("usersync serving", "address", scheme+"://"+ln.Addr().String(), "scim", scheme+"://"+ln.Addr().String()+server.SCIMPath, "directory", d.Where())
			set := telemetry.New()
			set.Directory(d, d.JobQueueDepth)
			var queue *jobs.Service
			if !noSchedules {
				if queue, err = jobs.Start(ctx, jobs.Options{Dir: d, SQL: d.SQLitePool(), DSN: a.dsn(), Run: a.runner(), Holder: servingHolder(),
					Log: log, Timeout: jobTimeout, RescueAfter: rescueAfter, OnRun: set.ScheduleRun}); err != nil {
					return err
				}
			}
			apiOpts := api.Options{CheckCommand: func(ctx context.Context, command []string) error {
				err := a.checkCommand(ctx, d, command)
				if err != nil && usersync.ErrorCode(err) == usersync.EINTERNAL {
					err = usersync.Errorf(usersync.EINVALID, "%s", err.Error()) // a usage error: the command line's fault
				}
				return err
			}}
			apiOpts.Retry = func(ctx context.Context, name, group string) error {
				g, _, err := a.provisioner(ctx, d, name, false)
				if err != nil {
					return err
				}
				_, err = g.Retry(ctx, group, entra.Options{}) // a group that fails again is recorded among its items
				return err
			}
			if queue != nil {
				apiOpts.RunNow = queue.RunNow
				apiOpts.Decide = func(ctx context.Context, id int64, allow bool) (*usersync.Run, error) {
					return queue.Decide(ctx, id, allow, usersync.ActorFrom(ctx))
				}
			}
			srv := &http.Server{Handler: server.New(d, log, server.Options{SCIMLogDir: scimLogDir, AccessLog: accessLog, Metrics: set, API: apiOpts}), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: time.Minute,
				ErrorLog: slog.NewLogLogger(handler, slog.LevelWarn), TLSConfig: tlsConf}
			go func() { // keep the SQLite WAL short, off the request path
				t := time.NewTicker(time.Second)
				defer t.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-t.C:
						if err := d.Checkpoint(ctx); err != nil && ctx.Err() == nil {
							log.Warn("checkpoint failed", "err", err)
						}
					}
				}
			}()
			provisioners := make(chan struct{})
			go func() {
				defer close(provisioners)
				if noProvisioners {
					return
				}
				entra.Serve(ctx, d, entra.ServeOptions{Log: log, OnRun: entra.Metrics(set), ReconcileEvery: cmp.Or(reconcileEvery, -1)})
			}()
			done := make(chan struct{})
			go func() {
				defer close(done)
				<-ctx.Done()
				log.Info("shutting down: finishing requests in flight")
				sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				srv.Shutdown(sctx)
			}()
			if tlsConf != nil {
				err = srv.ServeTLS(ln, "", "")
			} else {
				err = srv.Serve(ln)
			}
			if !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			<-done
			<-provisioners
			if queue != nil {
				sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				queue.Stop(sctx) // a run still going after 30 s is run again by another replica, or at the next start
				cancel()
			}
			log.Info("stopped")
			return nil
		}),
	}
	fl := c.Flags()
	fl.StringVar(&listen, "listen", "127.0.0.1:8080", "address to listen on")
	fl.StringVar(&cert, "tls-cert", "", "TLS certificate file (PEM); with --tls-key, serve HTTPS")
	fl.StringVar(&key, "tls-key", "", "TLS private key file (PEM)")
	fl.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	fl.StringVar(&scimLogDir, "scim-log-dir", "scim-log", "where SCIM requests are logged while the setting ENABLE_SCIM_REQUEST_LOGGER is Y")
	fl.BoolVar(&noProvisioners, "no-provisioners", false, "do not run the provisioners (another replica, or a maintenance window)")
	fl.DurationVar(&reconcileEvery, "reconcile-every", 24*time.Hour, "how often each provisioner compares the whole tenant with the directory and repairs drift (a reconcile), besides following changes; 0 never")
	fl.BoolVar(&noSchedules, "no-schedules", false, "do not run schedules (see \"usersync schedules\")")
	fl.DurationVar(&jobTimeout, "job-timeout", time.Hour, "the longest a scheduled run may take before it is cut and retried")
	fl.DurationVar(&rescueAfter, "rescue-after", 0, "when a run whose replica died is run again by another replica (more than --job-timeout; default --job-timeout + 1m)")
	fl.StringVar(&accessLog, "access-log", server.AccessAll, "which requests get an access-log line: all, errors (status 400 and above) or none")
	return c
}

// listenOn listens on a TCP address, naming what stops it.
func listenOn(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	switch {
	case err == nil:
		return ln, nil
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, usersync.Errorf(usersync.EUNAVAILABLE, "cannot listen on %s: another program uses that address (choose another with --listen)", addr)
	case errors.Is(err, syscall.EACCES):
		return nil, usersync.Errorf(usersync.EUNAVAILABLE, "cannot listen on %s: permission denied (ports below 1024 need privileges; choose another with --listen)", addr)
	}
	return nil, usersync.Errorf(usersync.EUNAVAILABLE, "cannot listen on %s: %v", addr, err)
}

// loadTLS loads a certificate pair up front, so a missing or wrong file is
// named before anything starts; nil when neither is given.
func loadTLS(cert, key string) (*tls.Config, error) {
	if cert == "" && key == "" {
		return nil, nil
	}
	if cert == "" || key == "" {
		return nil, usageError{errors.New("--tls-cert and --tls-key go together")}
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, usersync.Errorf(usersync.EINVALID, "cannot use the TLS certificate %s with key %s: %v", cert, key, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}
