package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/usersync/usersync/server"
	"github.com/usersync/usersync/sqlstore"
)

func (a *app) serveCommand() *cobra.Command {
	var listen, cert, key, logFormat, scimLogDir string
	c := &cobra.Command{
		Use:   "serve [--listen ADDR]",
		Short: "Run the usersync service: SCIM 2.0 at /scim/v2, /healthz, /readyz, /metrics",
		Long: `Run the usersync service until interrupted: SCIM 2.0 at /scim/v2 (bearer API
tokens of administrators), /healthz, /readyz (the directory answers) and
Prometheus metrics at /metrics. Logs are structured (--log-format text or
json) on standard error. With --tls-cert and --tls-key it serves HTTPS. On
SIGINT or SIGTERM it stops accepting connections and finishes the requests
in flight (up to 30 s).

SCIM serves Users and Groups (create, read, list with filters, PUT, PATCH,
delete) and the discovery endpoints. While the setting
ENABLE_SCIM_REQUEST_LOGGER is Y, each SCIM request and response is written to
a daily file in --scim-log-dir (Authorization and secrets redacted).`,
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
			if (cert == "") != (key == "") {
				return usageError{errors.New("--tls-cert and --tls-key go together")}
			}
			log := slog.New(handler)
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", listen, err)
			}
			scheme := "http"
			if cert != "" {
				scheme = "https"
			}
			log.Info("usersync serving", "address", scheme+"://"+ln.Addr().String(), "scim", scheme+"://"+ln.Addr().String()+server.SCIMPath, "directory", d.Where())
			srv := &http.Server{Handler: server.New(d, log, server.Options{SCIMLogDir: scimLogDir}), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: time.Minute,
				ErrorLog: slog.NewLogLogger(handler, slog.LevelWarn)}
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
			done := make(chan struct{})
			go func() {
				defer close(done)
				<-ctx.Done()
				log.Info("shutting down: finishing requests in flight")
				sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				srv.Shutdown(sctx)
			}()
			if cert != "" {
				err = srv.ServeTLS(ln, cert, key)
			} else {
				err = srv.Serve(ln)
			}
			if !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			<-done
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
	return c
}
