package telemetry

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/usersync/usersync"
)

// Directory adds the figures read from the directory at each scrape:
// each provisioner's backlog (change-log events it has not processed) and
// lag (the age of the oldest of them), and the job queue's depth (jobs
// waiting, scheduled or to be retried) when depth is given. They are the
// same on every replica: they come from the shared directory.
func (m *Metrics) Directory(dir usersync.Directory, depth func(context.Context) (int, error)) {
	m.reg.MustRegister(&directoryCollector{dir: dir, depth: depth})
}

var (
	backlogDesc = prometheus.NewDesc("usersync_provisioner_backlog_events", "Change-log events a provisioner has not processed yet.", []string{"provisioner"}, nil)
	lagDesc     = prometheus.NewDesc("usersync_provisioner_lag_seconds", "Age of the oldest change-log event a provisioner has not processed (0 when none).", []string{"provisioner"}, nil)
	depthDesc   = prometheus.NewDesc("usersync_job_queue_depth", "Jobs waiting to run: available, scheduled or to be retried.", nil, nil)
	upDesc      = prometheus.NewDesc("usersync_directory_scrape_ok", "1 when the directory answered the scrape's questions, 0 when it did not.", nil, nil)
)

type directoryCollector struct {
	dir   usersync.Directory
	depth func(context.Context) (int, error)
}

func (c *directoryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- backlogDesc
	ch <- lagDesc
	ch <- depthDesc
	ch <- upDesc
}

func (c *directoryCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ok := 1.0
	if err := c.collect(ctx, ch); err != nil {
		ok = 0 // the figures it could not read are left out, not made up
	}
	ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, ok)
}

func (c *directoryCollector) collect(ctx context.Context, ch chan<- prometheus.Metric) error {
	last, err := c.dir.LastChangeSeq(ctx)
	if err != nil {
		return err
	}
	ps, err := c.dir.FindProvisioners(ctx)
	if err != nil {
		return err
	}
	for _, p := range ps {
		cursor, err := c.dir.Cursor(ctx, usersync.ProvisionerCursor(p.Name))
		if err != nil {
			return err
		}
		lag := 0.0
		if cursor < last {
			next, err := c.dir.ChangesAfter(ctx, cursor, 1)
			if err != nil {
				return err
			}
			if len(next) == 1 {
				lag = time.Since(next[0].At).Seconds()
			}
		}
		ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(last-cursor), p.Name)
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, lag, p.Name)
	}
	if c.depth != nil {
		n, err := c.depth(ctx)
		if err != nil {
			return err
		}
		ch <- prometheus.MustNewConstMetric(depthDesc, prometheus.GaugeValue, float64(n))
	}
	return nil
}
