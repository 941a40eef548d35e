package api

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/dirgate/dirgate/internal/store"
)

// plainText reports whether s is text a person reads on one line: valid UTF-8, at most max
// characters, with no control characters (C0, DEL, C1) and none of the invisible marks that
// reorder or hide what is shown (bidirectional controls, the byte order mark).
func plainText(s string, max int) bool {
	return utf8.ValidString(s) && utf8.RuneCountInString(s) <= max && strings.IndexFunc(s, hiddenRune) < 0
}

func hiddenRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\ufeff'
}

// accountFilter checks an optional integrated_account_id query filter: absent, or an account id.
func accountFilter(v string, present bool) error {
	if present && !store.ValidAccountID(v) {
		return badRequest("integrated_account_id must be an integrated account id such as ia_2x4…")
	}
	return nil
}
