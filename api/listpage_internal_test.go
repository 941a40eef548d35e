package api

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestListPageAppendJSONMatchesEncoder keeps the hand-written page encoding byte for byte equal
// to what c.JSON (encoding/json's Encoder) wrote before, for items made by json.Marshal.
func TestListPageAppendJSONMatchesEncoder(t *testing.T) {
	t.Parallel()
	item := func(v any) json.RawMessage {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cur := "v1.k1.abc-_DEF"
	odd := "quote\" <tag> & \u2028 é"
	for name, p := range map[string]listPage{
		"empty":   {Result: []json.RawMessage{}},
		"last":    {Result: []json.RawMessage{item(map[string]any{"id": "1", "name": odd})}, ResultCount: 1},
		"more":    {Result: []json.RawMessage{item(map[string]any{"id": "1"}), item(map[string]any{"id": "2", "roles": []string{"a"}})}, NextCursor: &cur, ResultCount: 2},
		"partial": {Result: []json.RawMessage{item(struct{ ID string }{odd})}, ResultCount: 1, IsPartialResponse: true},
	} {
		t.Run(name, func(t *testing.T) {
			var want bytes.Buffer
			if err := json.NewEncoder(&want).Encode(p); err != nil {
				t.Fatal(err)
			}
			if got := p.appendJSON(nil); !bytes.Equal(got, want.Bytes()) {
				t.Errorf("appendJSON:\n%s\nencoding/json:\n%s", got, want.Bytes())
			}
		})
	}
}
