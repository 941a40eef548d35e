package podio

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

const (
	// TimeLayout is Podio's datetime format; values are UTC.
	TimeLayout = "2006-01-02 15:04:05"
	// DateLayout is Podio's date format.
	DateLayout = "2006-01-02"
)

// Time is a Podio datetime, "YYYY-MM-DD HH:MM:SS" in UTC (podio-api.md §1).
// JSON null and "" decode to the zero Time; the zero Time encodes as null.
type Time struct {
	time.Time
}

// UnmarshalJSON parses a Podio datetime.
func (t *Time) UnmarshalJSON(data []byte) error {
	v, err := parseJSONTime(data, TimeLayout)
	if err != nil {
		return err
	}
	t.Time = v
	return nil
}

// MarshalJSON writes the Podio datetime format in UTC.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(t.UTC().Format(TimeLayout))
}

// String returns the Podio format.
func (t Time) String() string {
	return t.UTC().Format(TimeLayout)
}

// Date is a Podio date, "YYYY-MM-DD". JSON null and "" decode to the zero
// Date; the zero Date encodes as null.
type Date struct {
	time.Time
}

// UnmarshalJSON parses a Podio date.
func (d *Date) UnmarshalJSON(data []byte) error {
	v, err := parseJSONTime(data, DateLayout)
	if err != nil {
		return err
	}
	d.Time = v
	return nil
}

// MarshalJSON writes the Podio date format.
func (d Date) MarshalJSON() ([]byte, error) {
	if d.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(d.Format(DateLayout))
}

// String returns the Podio format.
func (d Date) String() string {
	return d.Format(DateLayout)
}

func parseJSONTime(data []byte, layout string) (time.Time, error) {
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		return time.Time{}, nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return time.Time{}, fmt.Errorf("podio: time value %s is not a string: %w", data, err)
	}
	if s == "" {
		return time.Time{}, nil
	}
	v, err := time.ParseInLocation(layout, s, time.UTC)
	if err != nil {
		return time.Time{}, fmt.Errorf("podio: parsing time: %w", err)
	}
	return v, nil
}
