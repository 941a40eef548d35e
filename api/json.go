package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
)

func jsonDecoder(r io.Reader) *json.Decoder {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	return dec
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

// strictJSON decodes one JSON value from b into v, refusing unknown fields and trailing data.
func strictJSON(b []byte, v any) error {
	dec := jsonDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("more than one JSON value")
	}
	return nil
}
