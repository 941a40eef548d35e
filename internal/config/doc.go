// Package config reads dirgate's configuration from DIRGATE_* environment variables.
//
// [Config] is the one place where every variable, its default and its documentation live (struct
// tags env, envDefault and doc); [Vars] lists them for the README and --help. [Load] only parses;
// [Config.Validate] is what "dirgate serve" calls to refuse unsafe configuration, naming each
// variable to set. [Config.Redacted] gives a start-up log view with secrets hidden.
//
// The package imports nothing else from dirgate: callers copy the plain fields into whatever
// their packages take.
package config
