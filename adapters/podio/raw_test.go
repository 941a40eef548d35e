package podio_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/dirgate/dirgate/adapters/podio"
	"github.com/dirgate/dirgate/adapters/podio/podiosim"
)

// Objects as Podio might format them, with whitespace inside, so that a re-encoded copy would not
// pass for the raw one.
const (
	rawSpace   = `{"space_id": 40001,  "name": "Sales", "org": {"org_id": 3001, "name": "Northwind"}, "role": "admin"}`
	rawSpace2  = `{ "space_id": 40002, "name": null }`
	rawProfile = `{"profile_id": 2000002, "user_id": 1000002, "name": "Sam Taylor", "mail": ["member@demo.example"]}`
	rawUser    = `{"user_id": 1000002,  "mail": "member@demo.example", "status": "active"}`
)

var rawOrg = `{"org_id": 3001, "name": "Northwind",
  "spaces": [` + rawSpace + `, ` + rawSpace2 + `]}`

// TestRawCapture decodes each type that carries Raw and checks that Raw is the exact JSON of the
// object, nested objects included, and that encoding ignores Raw.
func TestRawCapture(t *testing.T) {
	t.Parallel()
	t.Run("Organization with spaces", func(t *testing.T) {
		var o podio.Organization
		decode(t, rawOrg, &o)
		want := []string{rawOrg, rawSpace, rawSpace2, `{"org_id": 3001, "name": "Northwind"}`}
		got := []string{string(o.Raw), string(o.Spaces[0].Raw), string(o.Spaces[1].Raw), string(o.Spaces[0].Org.Raw)}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("org, space, space, space.org Raw (-want +got):\n%s", diff)
		}
		if o.OrgID != 3001 || len(o.Spaces) != 2 || o.Spaces[0].Name != "Sales" || o.Spaces[1].Name != "" {
			t.Errorf("decoded fields wrong: %+v", o)
		}
		checkEncodingIgnoresRaw(t, &o, func(v *podio.Organization) {
			v.Raw = nil
			for _, s := range v.Spaces {
				s.Raw = nil
				if s.Org != nil {
					s.Org.Raw = nil
				}
			}
		})
	})
	t.Run("OrgMember", func(t *testing.T) {
		item := `{"user": ` + rawUser + `, "profile": ` + rawProfile + `, "employee": true, "role": "regular"}`
		var ms []*podio.OrgMember
		decode(t, "[ "+item+" ,\n "+item+" ]", &ms)
		for _, m := range ms {
			got := []string{string(m.Raw), string(m.User.Raw), string(m.Profile.Raw)}
			if diff := cmp.Diff([]string{item, rawUser, rawProfile}, got); diff != "" {
				t.Errorf("member, user, profile Raw (-want +got):\n%s", diff)
			}
		}
		checkEncodingIgnoresRaw(t, ms[0], func(v *podio.OrgMember) { v.Raw, v.User.Raw, v.Profile.Raw = nil, nil, nil })
	})
	t.Run("SpaceMemberV2 profile and user keys", func(t *testing.T) {
		for _, key := range []string{"profile", "user"} {
			item := `{"` + key + `": ` + rawProfile + `, "employee": false, "role": "light", "grants": 2}`
			var m podio.SpaceMemberV2
			decode(t, item, &m)
			got := []string{string(m.Raw), string(m.Profile.Raw)}
			if diff := cmp.Diff([]string{item, rawProfile}, got); diff != "" {
				t.Errorf("%s: member, profile Raw (-want +got):\n%s", key, diff)
			}
			checkEncodingIgnoresRaw(t, &m, func(v *podio.SpaceMemberV2) { v.Raw, v.Profile.Raw = nil, nil })
		}
	})
	t.Run("UserStatus", func(t *testing.T) {
		body := `{"user": ` + rawUser + `, "profile": ` + rawProfile + `, "inbox_new": 3}`
		var st podio.UserStatus
		decode(t, body, &st)
		got := []string{string(st.Raw), string(st.User.Raw), string(st.Profile.Raw)}
		if diff := cmp.Diff([]string{body, rawUser, rawProfile}, got); diff != "" {
			t.Errorf("status, user, profile Raw (-want +got):\n%s", diff)
		}
		checkEncodingIgnoresRaw(t, &st, func(v *podio.UserStatus) { v.Raw, v.User.Raw, v.Profile.Raw = nil, nil, nil })
	})
	t.Run("null leaves the value alone", func(t *testing.T) {
		var o *podio.Organization
		decode(t, "null", &o)
		if o != nil {
			t.Errorf("null decoded to %+v", o)
		}
		c := podio.Contact{Name: "kept"}
		decode(t, "null", &c)
		if c.Name != "kept" || c.Raw != nil {
			t.Errorf("null changed the contact: %+v", c)
		}
	})
	t.Run("Raw does not alias the input", func(t *testing.T) {
		buf := []byte(rawProfile)
		var c podio.Contact
		if err := json.Unmarshal(buf, &c); err != nil {
			t.Fatal(err)
		}
		for i := range buf {
			buf[i] = ' '
		}
		if string(c.Raw) != rawProfile {
			t.Errorf("Raw changed with the input buffer: %q", c.Raw)
		}
	})
}

func decode(t *testing.T, data string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(data), v); err != nil {
		t.Fatalf("decoding %s: %v", data, err)
	}
}

// checkEncodingIgnoresRaw encodes v, and a copy of v with Raw cleared everywhere, and wants the
// same bytes without any "Raw" key.
func checkEncodingIgnoresRaw[T any](t *testing.T, v *T, clear func(*T)) {
	t.Helper()
	with, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	// Round-trip into a fresh value to get a deep copy whose Raw fields can be cleared.
	var cp T
	if err := json.Unmarshal(with, &cp); err != nil {
		t.Fatal(err)
	}
	clear(&cp)
	without, err := json.Marshal(&cp)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(with, without) {
		t.Errorf("encoding depends on Raw:\n%s\n%s", with, without)
	}
	if strings.Contains(string(with), `"Raw"`) {
		t.Errorf("encoding has a Raw key: %s", with)
	}
}

// TestRawFromSimulator checks Raw on real answers: every item of GET /org/ and its spaces carry
// their own object.
func TestRawFromSimulator(t *testing.T) {
	t.Parallel()
	f := setup(t, podiosim.Config{})
	c := f.as(f.issued(t, adminMail))
	orgs, _, err := c.Orgs.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	type ids struct {
		OrgID   int64 `json:"org_id"`
		SpaceID int64 `json:"space_id"`
	}
	for _, o := range orgs {
		var got ids
		if err := json.Unmarshal(o.Raw, &got); err != nil {
			t.Fatalf("org %d Raw: %v", o.OrgID, err)
		}
		if diff := cmp.Diff(ids{OrgID: o.OrgID}, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("org Raw ids (-want +got):\n%s", diff)
		}
		for _, s := range o.Spaces {
			var got ids
			if err := json.Unmarshal(s.Raw, &got); err != nil {
				t.Fatalf("space %d Raw: %v", s.SpaceID, err)
			}
			if diff := cmp.Diff(ids{OrgID: o.OrgID, SpaceID: s.SpaceID}, got); diff != "" {
				t.Errorf("space Raw ids (-want +got):\n%s", diff)
			}
		}
	}
}
