package master_test

import (
	"strings"
	"testing"
	"time"

	"github.com/grappe/grappe/internal/master"
)

// Config.Validate reports a mistake before anything is opened or bound.
func TestConfigValidate(t *testing.T) {
	ok := func() master.Config {
		return master.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", ClusterListen: "127.0.0.1:0"}
	}
	c := ok()
	if err := c.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	if c.WorkerTimeout != 5*time.Second || c.MaxAttempts != 3 || c.MasterID == "" {
		t.Errorf("defaults not filled: %+v", c)
	}
	for _, tc := range []struct {
		name, want string
		change     func(*master.Config)
	}{
		{"no data dir", "DataDir", func(c *master.Config) { c.DataDir = "" }},
		{"cert without key", "--tls-key", func(c *master.Config) { c.TLSCertFile = "cert.pem" }},
		{"insecure off loopback", "loopback", func(c *master.Config) { c.InsecureHTTP, c.Listen = true, "0.0.0.0:7700" }},
		{"timeout under the heartbeat", "heartbeat interval", func(c *master.Config) {
			c.HeartbeatInterval, c.WorkerTimeout = 2*time.Second, time.Second
		}},
		{"negative duration", "negative", func(c *master.Config) { c.PlacementTimeout = -time.Second }},
		{"negative count", "negative", func(c *master.Config) { c.MaxQueuedPerUser = -1 }},
		{"bad address", "listen address", func(c *master.Config) { c.ClusterListen = "7701" }},
		{"pprof without a metrics address", "--metrics-listen", func(c *master.Config) { c.Pprof = true }},
	} {
		c := ok()
		tc.change(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error about %s", tc.name, err, tc.want)
		}
	}
}
