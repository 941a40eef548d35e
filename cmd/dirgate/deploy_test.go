package main

import (
	"bytes"
	"context"
	"debug/elf"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	yaml "github.com/oasdiff/yaml3"

	"github.com/dirgate/dirgate/internal/config"
	"github.com/dirgate/dirgate/internal/webhooks"
)

// The deployment files cannot be applied or built here (no cluster, no Docker engine). These
// tests hold them to what the code does: variable names, ports, probe paths, shutdown timing, and
// the exact build command of the Dockerfile.

const (
	repoRoot = "../.."
	k8sDir   = repoRoot + "/deploy/kubernetes"
	// asynqShutdownWait is asynq's default Config.ShutdownTimeout, which internal/jobs keeps.
	asynqShutdownWait = 8 * time.Second
)

// k8sObject is the part of a Kubernetes object these tests read.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       k8sSpec           `yaml:"spec"`

	// kustomization.yaml
	Resources []string   `yaml:"resources"`
	Images    []k8sImage `yaml:"images"`
}

// k8sImage is an images entry of kustomization.yaml.
type k8sImage struct {
	Name string `yaml:"name"`
}

type k8sSpec struct {
	Replicas *int `yaml:"replicas"`
	Selector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"selector"`
	PodSelector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"podSelector"`
	Template struct {
		Metadata struct {
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec podSpec `yaml:"spec"`
	} `yaml:"template"`
	// Service
	Ports []struct {
		Name       string `yaml:"name"`
		TargetPort string `yaml:"targetPort"`
	} `yaml:"ports"`
	// PodDisruptionBudget
	MaxUnavailable *int `yaml:"maxUnavailable"`
	// HorizontalPodAutoscaler
	ScaleTargetRef struct {
		Kind string `yaml:"kind"`
		Name string `yaml:"name"`
	} `yaml:"scaleTargetRef"`
	MinReplicas int `yaml:"minReplicas"`
	MaxReplicas int `yaml:"maxReplicas"`
}

type podSpec struct {
	TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               struct {
		RunAsNonRoot *bool `yaml:"runAsNonRoot"`
		RunAsUser    *int  `yaml:"runAsUser"`
	} `yaml:"securityContext"`
	Containers []container `yaml:"containers"`
}

type container struct {
	Name  string `yaml:"name"`
	Image string `yaml:"image"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	Env []struct {
		Name string `yaml:"name"`
	} `yaml:"env"`
	ReadinessProbe  *probe `yaml:"readinessProbe"`
	LivenessProbe   *probe `yaml:"livenessProbe"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	Lifecycle struct {
		PreStop struct {
			Sleep *struct {
				Seconds int `yaml:"seconds"`
			} `yaml:"sleep"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

// loadManifests parses every YAML document under deploy/kubernetes, by file name.
func loadManifests(t *testing.T) map[string][]k8sObject {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no YAML files in %s (%v)", k8sDir, err)
	}
	out := map[string][]k8sObject{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		for {
			var o k8sObject
			if err := dec.Decode(&o); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", filepath.Base(f), err)
			}
			if o.APIVersion == "" || o.Kind == "" {
				t.Errorf("%s: a document without apiVersion or kind", filepath.Base(f))
			}
			if o.Kind != "Kustomization" && o.Metadata.Name == "" {
				t.Errorf("%s: a %s without metadata.name", filepath.Base(f), o.Kind)
			}
			out[filepath.Base(f)] = append(out[filepath.Base(f)], o)
		}
	}
	return out
}

// one returns the single object of kind in the manifests.
func one(t *testing.T, m map[string][]k8sObject, kind string) k8sObject {
	t.Helper()
	var found []k8sObject
	for _, objs := range m {
		for _, o := range objs {
			if o.Kind == kind {
				found = append(found, o)
			}
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d objects of kind %s, want 1", len(found), kind)
	}
	return found[0]
}

// secretVars returns the variables config marks as secret.
func secretVars() map[string]bool {
	out := map[string]bool{}
	for f := range reflect.TypeFor[config.Config]().Fields() {
		if f.Tag.Get("secret") != "" {
			name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
			out[name] = true
		}
	}
	return out
}

// subset reports whether every label of sel is in labels.
func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// portOf returns the port of a listen address such as ":8080".
func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	return port
}

func TestKubernetesManifests(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)

	kust := one(t, m, "Kustomization")
	for _, r := range kust.Resources {
		if _, ok := m[r]; !ok {
			t.Errorf("kustomization.yaml lists %s, which is not a YAML file in %s", r, k8sDir)
		}
	}
	for f := range m {
		listed := slices.Contains(kust.Resources, f)
		switch f {
		case "kustomization.yaml":
		case "secret.example.yaml":
			if listed {
				t.Error("kustomization.yaml applies secret.example.yaml: its placeholders would replace the real Secret")
			}
		default:
			if !listed {
				t.Errorf("kustomization.yaml does not list %s", f)
			}
		}
	}

	dep := one(t, m, "Deployment")
	cm := one(t, m, "ConfigMap")
	sec := one(t, m, "Secret")
	svc := one(t, m, "Service")
	pdb := one(t, m, "PodDisruptionBudget")
	hpa := one(t, m, "HorizontalPodAutoscaler")
	np := one(t, m, "NetworkPolicy")
	pod := dep.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("the Deployment has %d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]

	t.Run("configuration names", func(t *testing.T) {
		known := map[string]bool{}
		for _, v := range config.Vars() {
			known[v.Name] = true
		}
		secret := secretVars()
		for k := range cm.Data {
			if !known[k] {
				t.Errorf("ConfigMap sets %s, which internal/config does not read", k)
			}
			if secret[k] {
				t.Errorf("ConfigMap sets %s, a secret: it belongs in the Secret", k)
			}
		}
		for k, v := range sec.StringData {
			if !known[k] {
				t.Errorf("Secret sets %s, which internal/config does not read", k)
			}
			if !strings.Contains(v, "REPLACE_ME") {
				t.Errorf("secret.example.yaml: %s is not a REPLACE_ME placeholder", k)
			}
		}
		// What serve refuses to start without, split between the two.
		for _, k := range []string{"DIRGATE_PUBLIC_URL", "DIRGATE_PODIO_CLIENT_ID"} {
			if _, ok := cm.Data[k]; !ok {
				t.Errorf("ConfigMap does not set %s", k)
			}
		}
		for _, k := range []string{"DIRGATE_JWT_HS256_SECRET", "DIRGATE_ENCRYPTION_KEYS", "DIRGATE_PODIO_CLIENT_SECRET", "DIRGATE_REDIS_URL"} {
			if _, ok := sec.StringData[k]; !ok {
				t.Errorf("Secret does not set %s", k)
			}
		}
		var fromCM, fromSecret bool
		for _, ef := range c.EnvFrom {
			fromCM = fromCM || (ef.ConfigMapRef != nil && ef.ConfigMapRef.Name == cm.Metadata.Name)
			fromSecret = fromSecret || (ef.SecretRef != nil && ef.SecretRef.Name == sec.Metadata.Name)
		}
		if !fromCM || !fromSecret {
			t.Errorf("the container does not take its environment from ConfigMap %q and Secret %q", cm.Metadata.Name, sec.Metadata.Name)
		}
		for _, e := range c.Env {
			if strings.HasPrefix(e.Name, "DIRGATE_") && !known[e.Name] {
				t.Errorf("the container sets %s, which internal/config does not read", e.Name)
			}
		}
	})

	t.Run("ports and probes", func(t *testing.T) {
		ports := map[string]string{}
		for _, p := range c.Ports {
			ports[p.Name] = strconv.Itoa(p.ContainerPort)
		}
		if got, want := ports["http"], portOf(t, cm.Data["DIRGATE_ADDR"]); got != want {
			t.Errorf("containerPort http = %s, DIRGATE_ADDR listens on %s", got, want)
		}
		if addr := cm.Data["DIRGATE_PROXY_ADDR"]; addr != "" {
			if got, want := ports["proxy"], portOf(t, addr); got != want {
				t.Errorf("containerPort proxy = %s, DIRGATE_PROXY_ADDR listens on %s", got, want)
			}
		}
		for name, p := range map[string]*probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
			if p == nil {
				t.Errorf("no %s probe", name)
				continue
			}
			if p.HTTPGet.Port != "http" {
				t.Errorf("%s probe on port %q, want the API port \"http\"", name, p.HTTPGet.Port)
			}
		}
		if c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet.Path != "/readyz" {
			t.Errorf("readiness probe path %q, want /readyz (turns 503 on drain)", c.ReadinessProbe.HTTPGet.Path)
		}
		if c.LivenessProbe != nil && c.LivenessProbe.HTTPGet.Path != "/healthz" {
			t.Errorf("liveness probe path %q, want /healthz (no Redis: its outage must not restart pods)", c.LivenessProbe.HTTPGet.Path)
		}
		for _, p := range svc.Spec.Ports {
			if _, ok := ports[p.TargetPort]; !ok {
				t.Errorf("Service port %s targets %q, not a named container port", p.Name, p.TargetPort)
			}
		}
	})

	t.Run("security", func(t *testing.T) {
		if sc := pod.SecurityContext; sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
			t.Error("the pod must run as a non-root user (runAsNonRoot: true, runAsUser not 0)")
		}
		sc := c.SecurityContext
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Error("readOnlyRootFilesystem is not true")
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Error("allowPrivilegeEscalation is not false")
		}
		if !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Error("capabilities are not all dropped")
		}
	})

	t.Run("graceful shutdown", func(t *testing.T) {
		shutdown, err := time.ParseDuration(cm.Data["DIRGATE_SHUTDOWN_TIMEOUT"])
		if err != nil {
			t.Fatalf("ConfigMap DIRGATE_SHUTDOWN_TIMEOUT: %v", err)
		}
		sleep := c.Lifecycle.PreStop.Sleep
		if sleep == nil || sleep.Seconds < 5 {
			t.Fatal("no preStop sleep of at least 5 s: load balancers would still send to a closed listener")
		}
		// serveAll's order: preStop, then HTTP drain (DIRGATE_SHUTDOWN_TIMEOUT), then the webhook
		// worker's wait, then asynq's for jobs. The grace period counts from the preStop.
		need := time.Duration(sleep.Seconds)*time.Second + shutdown + webhooks.DefaultTimeout + 2*time.Second + asynqShutdownWait
		if grace := time.Duration(pod.TerminationGracePeriodSeconds) * time.Second; grace <= need {
			t.Errorf("terminationGracePeriodSeconds %s, want more than %s (preStop + DIRGATE_SHUTDOWN_TIMEOUT + workers)", grace, need)
		}
	})

	t.Run("replicas", func(t *testing.T) {
		podLabels := dep.Spec.Template.Metadata.Labels
		if !subset(dep.Spec.Selector.MatchLabels, podLabels) {
			t.Error("the Deployment's selector does not match its pods")
		}
		if dep.Spec.Replicas == nil || *dep.Spec.Replicas < 3 {
			t.Error("the Deployment runs fewer than 3 replicas")
		}
		if !subset(serviceSelector(t), podLabels) {
			t.Error("the Service's selector does not match the pods")
		}
		if !subset(pdb.Spec.Selector.MatchLabels, podLabels) {
			t.Error("the PodDisruptionBudget's selector does not match the pods")
		}
		if pdb.Spec.MaxUnavailable == nil || *pdb.Spec.MaxUnavailable >= hpa.Spec.MinReplicas {
			t.Error("the PodDisruptionBudget lets every replica go")
		}
		if !subset(np.Spec.PodSelector.MatchLabels, podLabels) {
			t.Error("the NetworkPolicy's podSelector does not match the pods")
		}
		if hpa.Spec.ScaleTargetRef.Kind != "Deployment" || hpa.Spec.ScaleTargetRef.Name != dep.Metadata.Name {
			t.Error("the HPA does not scale the Deployment")
		}
		// While Redis is down each replica spends 1/DIRGATE_REPLICAS of a quota: counting fewer
		// replicas than can run would overspend it.
		n := atoi(t, cm.Data["DIRGATE_REPLICAS"])
		if n < hpa.Spec.MaxReplicas || n < *dep.Spec.Replicas {
			t.Errorf("DIRGATE_REPLICAS = %d, below the most replicas that can run (%d)", n, max(hpa.Spec.MaxReplicas, *dep.Spec.Replicas))
		}
	})

	t.Run("image", func(t *testing.T) {
		if !slices.ContainsFunc(kust.Images, func(i k8sImage) bool { return i.Name == c.Image }) {
			t.Errorf("kustomization.yaml has no images entry for the container image %q", c.Image)
		}
	})
}

// serviceSelector reads the Service's selector, a plain label map (unlike the Deployment's).
func serviceSelector(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(k8sDir, "service.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Spec struct {
			Selector map[string]string `yaml:"selector"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	return s.Spec.Selector
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if err := yaml.Unmarshal([]byte(s), &n); err != nil {
		t.Fatalf("%q is not a number", s)
	}
	return n
}

// TestKubernetesProbesAreServed asks a running gateway (dirgate dev) for the probe paths of the
// Deployment: a renamed route would otherwise leave every pod unready or restarting.
func TestKubernetesProbesAreServed(t *testing.T) {
	t.Parallel()
	dep := one(t, loadManifests(t), "Deployment")
	c := dep.Spec.Template.Spec.Containers[0]

	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(t.Context())
	var stdout syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"dev", "--addr", addr, "--sim-addr", freeAddr(t), "--proxy-addr", freeAddr(t)}, &stdout, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("dev did not stop")
		}
	})
	waitFor(t, &stdout, regexp.MustCompile(`(dirgate dev is running)`))

	get := func(path string) int {
		res, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for _, p := range []*probe{c.ReadinessProbe, c.LivenessProbe} {
		if p == nil {
			t.Fatal("the Deployment lacks a probe")
		}
		if code := get(p.HTTPGet.Path); code != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", p.HTTPGet.Path, code)
		}
	}
	// The gateway does not answer 200 to everything: the check above can fail.
	if code := get("/readyz-not-a-route"); code != http.StatusNotFound {
		t.Errorf("GET /readyz-not-a-route = %d, want 404", code)
	}
}

// dockerfile returns the Dockerfile's instructions, continuation lines joined, comments dropped.
func dockerfile(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if next, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(next + " ")
			continue
		}
		cur.WriteString(trimmed)
		out = append(out, cur.String())
		cur.Reset()
	}
	return out
}

// TestDockerfile checks the image's final stage: minimal, non-root, the API port, "serve".
func TestDockerfile(t *testing.T) {
	t.Parallel()
	ins := dockerfile(t)
	var froms []string
	for _, in := range ins {
		if f, ok := strings.CutPrefix(in, "FROM "); ok {
			froms = append(froms, f)
		}
	}
	if len(froms) < 2 {
		t.Fatalf("want a multi-stage build, have FROM %q", froms)
	}
	if final := froms[len(froms)-1]; final != "gcr.io/distroless/static-debian12:nonroot" && !strings.HasPrefix(final, "scratch") {
		t.Errorf("final stage FROM %s, want distroless static (nonroot)", final)
	}
	last := ins[slices.IndexFunc(ins, func(s string) bool { return strings.HasPrefix(s, "FROM ") && strings.Contains(s, froms[len(froms)-1]) }):]
	want := map[string]bool{`ENTRYPOINT ["/dirgate", "serve"]`: false, "USER 65532:65532": false}
	var exposed []string
	for _, in := range last {
		if _, ok := want[in]; ok {
			want[in] = true
		}
		if p, ok := strings.CutPrefix(in, "EXPOSE "); ok {
			exposed = append(exposed, strings.Fields(p)...)
		}
	}
	for in, seen := range want {
		if !seen {
			t.Errorf("the final stage lacks %s", in)
		}
	}
	var def string
	for _, v := range config.Vars() {
		if v.Name == "DIRGATE_ADDR" {
			def = v.Default
		}
	}
	if p := portOf(t, def); !slices.Contains(exposed, p) {
		t.Errorf("EXPOSE %v does not include DIRGATE_ADDR's default port %s", exposed, p)
	}

	// The Go image follows go.mod's go directive (major.minor).
	mod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVer := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(mod)
	if goVer == nil || !slices.Contains(ins, "ARG GO_VERSION="+string(goVer[1])) {
		t.Errorf("the Dockerfile does not build with Go %s (ARG GO_VERSION=%s)", goVer[1], goVer[1])
	}

	ignore, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(strings.Fields(string(ignore)), ".git") {
		t.Error(".dockerignore does not leave out .git")
	}
}

// TestDockerfileBuildsStaticBinary runs the Dockerfile's own go build command (output redirected
// to a temporary directory) and checks the binary can run on distroless/static: statically linked
// (no ELF interpreter, no shared libraries), stripped, and free of this machine's paths.
func TestDockerfileBuildsStaticBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	if runtime.GOOS != "linux" {
		t.Skip("checks an ELF binary")
	}
	t.Parallel()
	var build string
	for _, in := range dockerfile(t) {
		if strings.HasPrefix(in, "RUN ") && strings.Contains(in, "go build") {
			build = in
		}
	}
	if build == "" {
		t.Fatal("the Dockerfile has no RUN ... go build")
	}
	// Drop RUN and its BuildKit flags (--mount=...): the rest is the shell command.
	fields := strings.Fields(strings.TrimPrefix(build, "RUN "))
	for len(fields) > 0 && strings.HasPrefix(fields[0], "--") {
		fields = fields[1:]
	}
	cmdline := strings.Join(fields, " ")
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags "-s -w"`, "-o /out/dirgate", "./cmd/dirgate"} {
		if !strings.Contains(cmdline, want) {
			t.Errorf("the build command lacks %s: %s", want, cmdline)
		}
	}
	bin := filepath.Join(t.TempDir(), "dirgate")
	cmd := exec.CommandContext(t.Context(), "sh", "-c", strings.Replace(cmdline, "/out/dirgate", bin, 1))
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "TARGETOS=linux", "TARGETARCH="+runtime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmdline, err, out)
	}

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has an ELF interpreter: it is dynamically linked and needs a libc")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v", libs)
	}
	for _, s := range []string{".symtab", ".debug_info", ".zdebug_info"} {
		if f.Section(s) != nil {
			t.Errorf("the binary has a %s section: -ldflags \"-s -w\" did not strip it", s)
		}
	}
	abs, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(abs+"/")) {
		t.Errorf("the binary contains the build path %s: -trimpath did not apply", abs)
	}
}
