package podiosim_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dirgate/dirgate/adapters/podio/podiosim"
)

func state(t *testing.T, h *harness) map[string]any {
	t.Helper()
	return ctl(t, h, "GET", "/_sim/state", nil, 200).obj(t)
}

func TestDemoDataset(t *testing.T) {
	t.Parallel()
	a, b := setup(t, podiosim.Config{}), setup(t, podiosim.Config{Dataset: podiosim.Demo()})
	sa, sb := state(t, a), state(t, b)
	delete(sa, "now")
	delete(sb, "now")
	if diff := cmp.Diff(sa, sb); diff != "" {
		t.Fatalf("Demo() is not deterministic:\n%s", diff)
	}
	orgs := sa["orgs"].([]any)
	people := sa["people"].([]any)
	if len(orgs) != 2 || len(people) < 55 || len(people) > 65 {
		t.Fatalf("demo has %d orgs and %d people", len(orgs), len(people))
	}
	spaces, archived, open, invitees := 0, 0, 0, 0
	memberRoles := map[string]string{}
	adminIn := map[float64]bool{}
	for _, o := range orgs {
		for _, s := range o.(map[string]any)["spaces"].([]any) {
			sp := s.(map[string]any)
			spaces++
			if sp["archived"] == true {
				archived++
			}
			if sp["privacy"] == "open" {
				open++
			}
			for _, m := range sp["members"].([]any) {
				mm := m.(map[string]any)
				if num(mm["user_id"]) == memberID && o.(map[string]any)["org_id"] == float64(3001) {
					memberRoles[mm["role"].(string)] = sp["name"].(string)
				}
				if num(mm["user_id"]) == adminUserID {
					adminIn[sp["space_id"].(float64)] = true
				}
				if mm["invited"] == true {
					invitees++
				}
			}
		}
	}
	if spaces != 8 || archived != 1 || open != 1 || invitees == 0 || len(adminIn) != 7 {
		t.Errorf("spaces=%d archived=%d open=%d invited memberships=%d admin@ in %d spaces", spaces, archived, open, invitees, len(adminIn))
	}
	if len(memberRoles) != 3 {
		t.Errorf("member@ roles in org 1 = %v, want admin, regular and light", memberRoles)
	}
	// Two servers built from one Dataset do not share state.
	ds := podiosim.Demo()
	x, y := setup(t, podiosim.Config{Dataset: ds}), setup(t, podiosim.Config{Dataset: ds})
	ctl(t, x, "PATCH", "/_sim/orgs/3001", map[string]any{"name": "Changed"}, 200)
	if name := state(t, y)["orgs"].([]any)[0].(map[string]any)["name"]; name == "Changed" {
		t.Error("servers share one dataset")
	}
}

func TestLargeDataset(t *testing.T) {
	t.Parallel()
	h := setup(t, podiosim.Config{Dataset: podiosim.Large(podiosim.LargeOptions{})})
	st := state(t, h)
	if n := len(st["people"].([]any)); n != 20000 {
		t.Errorf("people = %d", n)
	}
	o := st["orgs"].([]any)[0].(map[string]any)
	if n := len(o["spaces"].([]any)); n != 200 {
		t.Errorf("spaces = %d", n)
	}
	admin := h.token(adminMail)
	if r := h.do("GET", "/org/3001/member/?limit=100&offset=19900", admin, nil); r.status != 200 || len(r.arr(t)) == 0 {
		t.Errorf("large org member page: %d", r.status)
	}
	if r := h.do("GET", "/org/3001/member/", h.token(memberMail), nil); r.status != 403 {
		t.Errorf("member@ listing org members: %d", r.status)
	}
	small := podiosim.Large(podiosim.LargeOptions{Seed: 7, Orgs: 2, Spaces: 6, People: 50})
	s1 := state(t, setup(t, podiosim.Config{Dataset: small}))
	s2 := state(t, setup(t, podiosim.Config{Dataset: podiosim.Large(podiosim.LargeOptions{Seed: 7, Orgs: 2, Spaces: 6, People: 50})}))
	delete(s1, "now")
	delete(s2, "now")
	if diff := cmp.Diff(s1, s2); diff != "" {
		t.Errorf("Large is not deterministic:\n%s", diff)
	}
	if len(s1["orgs"].([]any)) != 2 {
		t.Errorf("orgs = %d", len(s1["orgs"].([]any)))
	}
}

func TestDatasetByName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		wantErr bool
	}{{"demo", false}, {"large", false}, {"huge", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ds, err := podiosim.DatasetByName(tc.name)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err == nil && ds.Name() != tc.name {
				t.Errorf("Name() = %q", ds.Name())
			}
		})
	}
}

func BenchmarkLarge(b *testing.B) {
	for b.Loop() {
		podiosim.Large(podiosim.LargeOptions{})
	}
}
