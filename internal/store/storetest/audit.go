package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/grappe/grappe/internal/store"
)

func testAudit(t *testing.T, s store.Store) {
	ctx := context.Background()
	base := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	entries := []store.AuditEntry{
		{Actor: "ada", Action: "user.add", Target: "bob", Detail: "role user"},
		{Actor: "ada", Action: "token.create", Target: "t1", Detail: "name ci"},
		{Actor: "bob", Action: "login", Addr: "127.0.0.1:5000"},
		{Actor: "ada", Action: "user.remove", Target: "carol", Detail: "50%_off"},
	}
	var last int64
	for i := range entries {
		e := entries[i]
		e.Time = base.Add(time.Duration(i) * time.Minute)
		if err := s.AppendAudit(ctx, &e); err != nil {
			t.Fatal(err)
		}
		if e.Seq <= last {
			t.Fatalf("entry %d: Seq %d after %d", i, e.Seq, last)
		}
		last = e.Seq
	}
	list := func(f store.AuditFilter) string {
		t.Helper()
		got, err := s.ListAudit(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		out := ""
		for _, e := range got {
			out += fmt.Sprintf("%s:%s/%s;", e.Actor, e.Action, e.Target)
		}
		return out
	}
	all, err := s.ListAudit(ctx, store.AuditFilter{})
	if err != nil || len(all) != 4 {
		t.Fatalf("ListAudit: %d entries, %v", len(all), err)
	}
	if e := all[3]; !e.Time.Equal(base) || e.Detail != "role user" || e.Actor != "ada" || e.Addr != "" {
		t.Errorf("oldest entry read back as %+v", e)
	}
	if e := all[1]; e.Addr != "127.0.0.1:5000" || e.Time.Location() != time.UTC {
		t.Errorf("login entry read back as %+v", e)
	}
	for _, tc := range []struct {
		f    store.AuditFilter
		want string
	}{
		{store.AuditFilter{}, "ada:user.remove/carol;bob:login/;ada:token.create/t1;ada:user.add/bob;"},
		{store.AuditFilter{Actor: "ada", Limit: 2}, "ada:user.remove/carol;ada:token.create/t1;"},
		{store.AuditFilter{Action: "user."}, "ada:user.remove/carol;ada:user.add/bob;"},
		{store.AuditFilter{Action: "user"}, ""},
		{store.AuditFilter{Action: "login"}, "bob:login/;"},
		{store.AuditFilter{Query: "CI"}, "ada:token.create/t1;"},
		{store.AuditFilter{Query: "%_"}, "ada:user.remove/carol;"},
		{store.AuditFilter{Query: "%"}, "ada:user.remove/carol;"},
		{store.AuditFilter{Since: base.Add(2 * time.Minute)}, "ada:user.remove/carol;bob:login/;"},
		{store.AuditFilter{Before: all[1].Seq}, "ada:token.create/t1;ada:user.add/bob;"},
	} {
		if got := list(tc.f); got != tc.want {
			t.Errorf("ListAudit(%+v) = %s, want %s", tc.f, got, tc.want)
		}
	}
	if n, err := s.TrimAudit(ctx, base.Add(2*time.Minute)); err != nil || n != 2 {
		t.Fatalf("TrimAudit = %d, %v; want the 2 oldest", n, err)
	}
	if got := list(store.AuditFilter{}); got != "ada:user.remove/carol;bob:login/;" {
		t.Errorf("after the trim: %s", got)
	}
}

func testStatsSamples(t *testing.T, s store.Store) {
	ctx := context.Background()
	base := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	add := func(master string, at time.Time, queued int, keepAfter time.Time) {
		t.Helper()
		v := &store.StatsSample{Master: master, Time: at, Seconds: 15, QueueDepth: queued, Running: 2, Submitted: 7, Completed: 5, QueueWaitMs: 12.5}
		if err := s.AddStatsSample(ctx, v, keepAfter); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 4 {
		add("a", base.Add(time.Duration(i)*15*time.Second), i, time.Time{})
	}
	add("b", base.Add(15*time.Second), 10, time.Time{})
	add("a", base.Add(15*time.Second), 99, time.Time{}) // the same sample twice: the first stays
	got, err := s.StatsSamples(ctx, base.Add(15*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	desc := ""
	for _, v := range got {
		desc += fmt.Sprintf("%s@%s:%d;", v.Master, v.Time.Sub(base), v.QueueDepth)
	}
	if want := "a@15s:1;b@15s:10;a@30s:2;a@45s:3;"; desc != want {
		t.Errorf("StatsSamples = %s, want %s", desc, want)
	}
	if v := got[0]; v.Seconds != 15 || v.Running != 2 || v.Submitted != 7 || v.Completed != 5 || v.QueueWaitMs != 12.5 || v.Time.Location() != time.UTC {
		t.Errorf("sample read back as %+v", v)
	}
	// A write trims what is older than its keepAfter, every master's.
	add("a", base.Add(time.Minute), 4, base.Add(30*time.Second))
	got, err = s.StatsSamples(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !got[0].Time.Equal(base.Add(30*time.Second)) {
		t.Errorf("after the trim: %d samples, first at %v", len(got), got[0].Time)
	}
}
