package podio_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dirgate/dirgate/adapters/podio"
	"github.com/dirgate/dirgate/adapters/podio/podiosim"
	"github.com/dirgate/dirgate/unified"
)

func TestUsersUpdateProfile(t *testing.T) {
	t.Parallel()
	statuses := []struct {
		name string
		cfg  podiosim.Config
	}{
		{"204", podiosim.Config{}},
		{"200 with {}", podiosim.Config{UpdateProfileStatus: 200}},
	}
	for _, st := range statuses {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, st.cfg)
			ctx := t.Context()
			member := f.as(f.issued(t, memberMail))
			if _, err := member.Users.UpdateProfile(ctx, &podio.ProfileUpdate{Title: []string{"Head of Marketing"}, Location: []string{"Copenhagen"}}); err != nil {
				t.Fatalf("UpdateProfile: %v", err)
			}
			status, _, err := member.Users.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got := []any{status.Profile.Title, status.Profile.Location, status.Profile.Name}
			want := []any{[]string{"Head of Marketing"}, []string{"Copenhagen"}, "Sam Taylor"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("own profile after UpdateProfile: title, location, name (-want +got):\n%s", diff)
			}

			// Another person sees the change too.
			admin := f.as(f.issued(t, adminMail))
			p, _, err := admin.Contacts.GetUser(ctx, f.userID(t, memberMail))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{"Copenhagen"}, p.Location); diff != "" {
				t.Errorf("location seen by the admin (-want +got):\n%s", diff)
			}

			if _, err := member.Users.UpdateProfileField(ctx, "location", nil); err != nil {
				t.Fatalf("UpdateProfileField(location, nil): %v", err)
			}
			if status, _, err = member.Users.Status(ctx); err != nil {
				t.Fatal(err)
			}
			if len(status.Profile.Location) != 0 {
				t.Errorf("location after clearing = %v", status.Profile.Location)
			}
		})
	}
}

func TestUsersUpdate(t *testing.T) {
	t.Parallel()
	f := setup(t, podiosim.Config{})
	ctx := t.Context()
	member := f.as(f.issued(t, memberMail))
	if _, err := member.Users.Update(ctx, &podio.UserUpdate{Locale: "da_DK", Timezone: "Europe/Copenhagen"}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if _, err := member.Users.Update(ctx, &podio.UserUpdate{Timezone: "Asia/Tokyo"}); err != nil {
		t.Fatalf("Update(timezone only): %v", err)
	}
	u, _, err := member.Users.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"da_DK", "Asia/Tokyo"}, []string{u.Locale, u.Timezone}); diff != "" {
		t.Errorf("locale, timezone (-want +got):\n%s", diff)
	}
	if got := f.sim.Calls()[podiosim.RouteUpdateUser]; got != 2 {
		t.Errorf("PUT /user/ calls = %d, want 2", got)
	}
}

func TestUsersUpdateErrors(t *testing.T) {
	t.Parallel()
	f := setup(t, podiosim.Config{})
	ctx := t.Context()
	member := f.as(f.issued(t, memberMail))

	// Nothing to send: refused without a request.
	f.sim.ResetCalls()
	if _, err := member.Users.Update(ctx, nil); err == nil {
		t.Error("Update(nil): no error")
	}
	if _, err := member.Users.Update(ctx, &podio.UserUpdate{}); err == nil {
		t.Error("Update(empty): no error")
	}
	if _, err := member.Users.UpdateProfile(ctx, &podio.ProfileUpdate{}); err == nil {
		t.Error("UpdateProfile(empty): no error")
	}
	if _, err := member.Users.UpdateProfileField(ctx, "", "x"); err == nil {
		t.Error("UpdateProfileField without key: no error")
	}
	if got := calls(f); len(got) != 0 {
		t.Errorf("requests were sent: %v", got)
	}

	// Podio's refusals are typed errors.
	_, err := member.Users.Update(ctx, &podio.UserUpdate{Timezone: "Mars/Base"})
	if e, ok := errors.AsType[*podio.Error](err); !ok || e.StatusCode != 400 || e.Code != "invalid_value" {
		t.Errorf("bad timezone: err = %v, want a 400 invalid_value *podio.Error", err)
	}
	_, err = member.Users.UpdateProfileField(ctx, "mail", []string{"x@y.example"})
	if e, ok := errors.AsType[*podio.Error](err); !ok || e.StatusCode != 400 {
		t.Errorf("read-only field: err = %v, want a 400 *podio.Error", err)
	}

	app, err := f.client.OAuth.AppGrant(ctx, 5001, "demo-app-token")
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.as(app).Users.UpdateProfile(ctx, &podio.ProfileUpdate{Title: []string{"x"}})
	if e, ok := errors.AsType[*podio.Error](err); !ok || !e.IsForbidden() {
		t.Errorf("app token: err = %v, want a 403 *podio.Error", err)
	}
}

func TestDirectoryUpdateMe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		update    unified.MeUpdate
		wantCalls map[string]int
		want      []*string // title, locale, timezone after the update
	}{
		{"title only", unified.MeUpdate{Title: ptr("Head of Marketing")},
			map[string]int{podiosim.RouteUpdateProfile: 1}, []*string{ptr("Head of Marketing"), ptr("en_GB"), ptr("Europe/London")}},
		{"location only", unified.MeUpdate{Location: ptr("Copenhagen")},
			map[string]int{podiosim.RouteUpdateProfile: 1}, []*string{ptr("Marketing Lead"), ptr("en_GB"), ptr("Europe/London")}},
		{"timezone only", unified.MeUpdate{Timezone: ptr("Europe/Copenhagen")},
			map[string]int{podiosim.RouteUpdateUser: 1}, []*string{ptr("Marketing Lead"), ptr("en_GB"), ptr("Europe/Copenhagen")}},
		{"everything", unified.MeUpdate{Title: ptr("CMO"), Location: ptr("Aarhus"), Locale: ptr("da_DK"), Timezone: ptr("Europe/Copenhagen")},
			map[string]int{podiosim.RouteUpdateProfile: 1, podiosim.RouteUpdateUser: 1}, []*string{ptr("CMO"), ptr("da_DK"), ptr("Europe/Copenhagen")}},
		{"nothing", unified.MeUpdate{}, map[string]int{}, []*string{ptr("Marketing Lead"), ptr("en_GB"), ptr("Europe/London")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, podiosim.Config{})
			d := f.directory(t, memberMail, podio.DirectoryOptions{})
			f.sim.ResetCalls()
			if err := d.UpdateMe(t.Context(), tc.update); err != nil {
				t.Fatalf("UpdateMe: %v", err)
			}
			if diff := cmp.Diff(tc.wantCalls, calls(f)); diff != "" {
				t.Errorf("Podio calls (-want +got):\n%s", diff)
			}
			me, err := d.Me(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, []*string{me.Title, me.Locale, me.Timezone}); diff != "" {
				t.Errorf("title, locale, timezone (-want +got):\n%s", diff)
			}
			if tc.update.Location != nil && !strings.Contains(string(me.RemoteData[0].Data), `"location":["`+*tc.update.Location+`"]`) {
				t.Errorf("remote_data does not show the location: %s", me.RemoteData[0].Data)
			}
		})
	}

	t.Run("refused input", func(t *testing.T) {
		t.Parallel()
		f := setup(t, podiosim.Config{})
		err := f.directory(t, memberMail, podio.DirectoryOptions{}).UpdateMe(t.Context(), unified.MeUpdate{Locale: ptr("xx")})
		if !errors.Is(err, unified.ErrInvalidInput) {
			t.Errorf("err = %v, want unified.ErrInvalidInput", err)
		}
	})
	t.Run("app grant", func(t *testing.T) {
		t.Parallel()
		f := setup(t, podiosim.Config{})
		app, err := f.client.OAuth.AppGrant(t.Context(), 5001, "demo-app-token")
		if err != nil {
			t.Fatal(err)
		}
		err = podio.NewDirectory(f.as(app), podio.DirectoryOptions{}).UpdateMe(t.Context(), unified.MeUpdate{Title: ptr("x")})
		if e, ok := errors.AsType[*podio.Error](err); !ok || !e.IsForbidden() || errors.Is(err, unified.ErrInvalidInput) {
			t.Errorf("err = %v, want a 403 *podio.Error", err)
		}
	})
}
