package jobs

import (
	"strings"
	"testing"
	"time"
)

// A rescue delay that does not exceed the timeout would run a job twice.
func TestStartRefusesShortRescue(t *testing.T) {
	_, err := Start(t.Context(), Options{Timeout: time.Minute, RescueAfter: time.Minute})
	if err == nil || !strings.Contains(err.Error(), "must exceed") {
		t.Fatalf("Start: %v", err)
	}
}
