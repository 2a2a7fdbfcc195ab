package k8s

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"pushbench/bench"
	"pushbench/servers"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The names the manifests share: the coordinator reaches the server and
// the agents by them.
const (
	namespace       = "pushbench"
	tokenSecret     = "pushbench-tokens"
	serverTokenKey  = "server-token"
	agentTokenKey   = "agent-token"
	serverName      = "pushbench-server"
	agentName       = "pushbench-agent"
	agentsConfigMap = "pushbench-agents"
	agentsKey       = "agents" // the ConfigMap's key: the file --agents-file reads
	resultsClaim    = "pushbench-results"
	coordinatorName = "pushbench-coordinator"
	readerPod       = "pushbench-results-reader"

	// placeholderLabel marks the Secret of placeholder tokens, which
	// `kubectl apply -l` leaves out once the real one exists (README.md).
	placeholderLabel    = "pushbench/placeholder"
	placeholderSelector = "-l '" + placeholderLabel + "!=true'"

	// maxAgentShare bounds the clients an overlay gives one agent: an
	// agent refuses a share above the ceiling it reports (open files,
	// ephemeral ports; about 19,800 on a typical machine), so the overlays
	// keep well under it.
	maxAgentShare = 15000

	kustomizeAPIVersion = "kustomize.config.k8s.io/v1beta1"
)

// The overlays and what they must run: a change of size is a change of
// this table too.
var overlays = []struct {
	dir     string
	agents  int
	clients int
}{
	{"base", 2, 2000},
	{"overlays/small", 2, 2000},
	{"overlays/large", 12, 150000},
}

// kustomization is the part of kustomize's Kustomization that these
// manifests use. It is decoded strictly: a field not listed here fails the
// test, and then belongs here (with a check of its own) or not in the file.
type kustomization struct {
	APIVersion string           `json:"apiVersion"`
	Kind       string           `json:"kind"`
	Namespace  string           `json:"namespace,omitempty"`
	Resources  []string         `json:"resources,omitempty"`
	Patches    []kustomizePatch `json:"patches,omitempty"`
	Labels     []kustomizeLabel `json:"labels,omitempty"`
	Images     []kustomizeImage `json:"images,omitempty"`
}

// kustomizePatch is a patch from a file (strategic merge, or JSON 6902
// with a target); inline patches are not used.
type kustomizePatch struct {
	Path   string           `json:"path"`
	Target *kustomizeTarget `json:"target,omitempty"`
}

type kustomizeTarget struct {
	Group   string `json:"group,omitempty"`
	Version string `json:"version,omitempty"`
	Kind    string `json:"kind,omitempty"`
	Name    string `json:"name,omitempty"`
}

type kustomizeLabel struct {
	Pairs            map[string]string `json:"pairs"`
	IncludeSelectors bool              `json:"includeSelectors,omitempty"`
	IncludeTemplates bool              `json:"includeTemplates,omitempty"`
}

type kustomizeImage struct {
	Name    string `json:"name"`
	NewName string `json:"newName,omitempty"`
	NewTag  string `json:"newTag,omitempty"`
	Digest  string `json:"digest,omitempty"`
}

// newObject is the empty object a document of apiVersion and kind decodes
// into, or nil for a kind this test does not know.
func newObject(apiVersion, kind string) any {
	switch apiVersion + " " + kind {
	case "v1 Namespace":
		return &corev1.Namespace{}
	case "v1 Secret":
		return &corev1.Secret{}
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}
	case "v1 Service":
		return &corev1.Service{}
	case "v1 PersistentVolumeClaim":
		return &corev1.PersistentVolumeClaim{}
	case "v1 Pod":
		return &corev1.Pod{}
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}
	case "apps/v1 StatefulSet":
		return &appsv1.StatefulSet{}
	case "batch/v1 Job":
		return &batchv1.Job{}
	case kustomizeAPIVersion + " Kustomization":
		return &kustomization{}
	}
	return nil
}

// document is one decoded YAML document.
type document struct {
	where string // file, and the document's number in it
	kind  string
	obj   any
}

// splitDocuments splits a YAML stream on its "---" lines, leaving out
// documents of nothing but comments and blank lines.
func splitDocuments(b []byte) [][]byte {
	var docs [][]byte
	var cur []string
	flush := func() {
		for _, l := range cur {
			if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
				docs = append(docs, []byte(strings.Join(cur, "\n")+"\n"))
				break
			}
		}
		cur = nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.TrimRight(line, " \t\r") == "---" {
			flush()
			continue
		}
		cur = append(cur, line)
	}
	flush()
	return docs
}

// decodeStrict decodes one YAML document into obj as the API server's
// strict field validation would: an unknown field (names are matched
// case-sensitively), a duplicate field or a value of the wrong type fails.
func decodeStrict(doc []byte, obj any) error {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strict, err := sigsjson.UnmarshalStrict(j, obj, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	if len(strict) > 0 {
		msgs := make([]string, len(strict))
		for i, e := range strict {
			msgs[i] = e.Error()
		}
		return fmt.Errorf("strict decoding: %s", strings.Join(msgs, "; "))
	}
	return nil
}

// decodeAll decodes every document of a YAML stream into its type.
func decodeAll(t *testing.T, where string, b []byte) []document {
	t.Helper()
	var out []document
	for i, doc := range splitDocuments(b) {
		w := fmt.Sprintf("%s, document %d", where, i+1)
		var tm struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Errorf("%s: %v", w, err)
			continue
		}
		if tm.APIVersion == "" || tm.Kind == "" {
			t.Errorf("%s: no apiVersion or kind", w)
			continue
		}
		obj := newObject(tm.APIVersion, tm.Kind)
		if obj == nil {
			t.Errorf("%s: %s %s is a kind this test does not know: add it to newObject, with its checks", w, tm.APIVersion, tm.Kind)
			continue
		}
		if err := decodeStrict(doc, obj); err != nil {
			t.Errorf("%s: %s %s: %v", w, tm.APIVersion, tm.Kind, err)
			continue
		}
		out = append(out, document{where: w, kind: tm.Kind, obj: obj})
	}
	return out
}

// manifests reads every YAML file under this folder, keyed by its path
// relative to it (with /).
func manifests(t *testing.T) map[string][]document {
	t.Helper()
	files := map[string][]document{}
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if ext := filepath.Ext(p); ext != ".yaml" && ext != ".yml" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		p = filepath.ToSlash(p)
		files[p] = decodeAll(t, p, b)
		if len(files[p]) == 0 && !t.Failed() {
			t.Errorf("%s: no document", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no manifests found")
	}
	return files
}

// TestManifestsDecodeStrictly decodes every manifest, patch and
// kustomization strictly, and checks that every kustomization names files
// that exist and that every manifest in a kustomization's folder is used
// by it.
func TestManifestsDecodeStrictly(t *testing.T) {
	files := manifests(t)
	used := map[string]bool{}
	kinds := map[string]int{}
	for p, docs := range files {
		for _, d := range docs {
			kinds[d.kind]++
			k, ok := d.obj.(*kustomization)
			if !ok {
				continue
			}
			if path.Base(p) != "kustomization.yaml" {
				t.Errorf("%s: a Kustomization must be named kustomization.yaml", d.where)
				continue
			}
			used[p] = true
			checkKustomization(t, p, k, files, used)
		}
	}
	for p := range files {
		dir := path.Dir(p)
		if _, ok := files[path.Join(dir, "kustomization.yaml")]; ok && !used[p] {
			t.Errorf("%s: in a kustomization's folder but neither a resource nor a patch of it", p)
		}
	}
	for _, want := range []string{"Kustomization", "Namespace", "Secret", "Deployment", "Service", "StatefulSet", "ConfigMap", "PersistentVolumeClaim", "Job", "Pod"} {
		if kinds[want] == 0 {
			t.Errorf("no %s among the manifests", want)
		}
	}
	t.Logf("%d files decoded strictly: %v", len(files), kinds)
}

func checkKustomization(t *testing.T, p string, k *kustomization, files map[string][]document, used map[string]bool) {
	dir := path.Dir(p)
	if k.APIVersion != kustomizeAPIVersion {
		t.Errorf("%s: apiVersion %q, want %s", p, k.APIVersion, kustomizeAPIVersion)
	}
	if len(k.Resources) == 0 {
		t.Errorf("%s: no resources", p)
	}
	for _, r := range k.Resources {
		rp := path.Join(dir, r)
		fi, err := os.Stat(filepath.FromSlash(rp))
		switch {
		case err != nil:
			t.Errorf("%s: resource %s: %v", p, r, err)
		case fi.IsDir():
			if _, ok := files[path.Join(rp, "kustomization.yaml")]; !ok {
				t.Errorf("%s: resource %s: a folder without kustomization.yaml", p, r)
			}
		default:
			if _, ok := files[rp]; !ok {
				t.Errorf("%s: resource %s: not a manifest this test decoded", p, r)
			}
			used[rp] = true
		}
	}
	for _, pt := range k.Patches {
		pp := path.Join(dir, pt.Path)
		docs, ok := files[pp]
		switch {
		case pt.Path == "":
			t.Errorf("%s: a patch without path (inline patches are not used here)", p)
		case !ok:
			t.Errorf("%s: patch %s: no such manifest", p, pt.Path)
		case path.Dir(pp) != dir:
			t.Errorf("%s: patch %s: outside the kustomization's folder (kustomize refuses it)", p, pt.Path)
		default:
			used[pp] = true
			for _, d := range docs {
				if m, ok := d.obj.(metav1.Object); !ok || m.GetName() == "" {
					t.Errorf("%s: a patch names its target by metadata.name", d.where)
				}
			}
		}
	}
	for _, im := range k.Images {
		if im.Name != "pushbench" {
			t.Errorf("%s: image %q: only the pushbench image is set by kustomize", p, im.Name)
		}
	}
}

// render builds a kustomization as `kubectl kustomize` would, and decodes
// its output strictly.
func render(t *testing.T, dir string) []document {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), abs)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := m.AsYaml()
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	docs := decodeAll(t, "kustomize build "+dir, out)
	if t.Failed() {
		t.FailNow()
	}
	return docs
}

// stack is the objects of one rendered kustomization.
type stack struct {
	ns        *corev1.Namespace
	secret    *corev1.Secret
	server    *appsv1.Deployment
	serverSvc *corev1.Service
	agents    *appsv1.StatefulSet
	agentSvc  *corev1.Service
	agentList *corev1.ConfigMap
	results   *corev1.PersistentVolumeClaim
	job       *batchv1.Job
}

// newStack sorts the objects of a build into a stack: each exactly once,
// nothing else, all in the pushbench namespace.
func newStack(t *testing.T, docs []document) stack {
	t.Helper()
	var s stack
	set := func(dup bool, d document) {
		if dup {
			t.Errorf("%s: a second %s %s", d.where, d.kind, d.obj.(metav1.Object).GetName())
		}
	}
	for _, d := range docs {
		m := d.obj.(metav1.Object)
		if d.kind != "Namespace" && m.GetNamespace() != namespace {
			t.Errorf("%s: %s %s in namespace %q, want %s", d.where, d.kind, m.GetName(), m.GetNamespace(), namespace)
		}
		switch o := d.obj.(type) {
		case *corev1.Namespace:
			if o.Name == namespace {
				set(s.ns != nil, d)
				s.ns = o
				continue
			}
		case *corev1.Secret:
			if o.Name == tokenSecret {
				set(s.secret != nil, d)
				s.secret = o
				continue
			}
		case *appsv1.Deployment:
			if o.Name == serverName {
				set(s.server != nil, d)
				s.server = o
				continue
			}
		case *corev1.Service:
			switch o.Name {
			case serverName:
				set(s.serverSvc != nil, d)
				s.serverSvc = o
				continue
			case agentName:
				set(s.agentSvc != nil, d)
				s.agentSvc = o
				continue
			}
		case *appsv1.StatefulSet:
			if o.Name == agentName {
				set(s.agents != nil, d)
				s.agents = o
				continue
			}
		case *corev1.ConfigMap:
			if o.Name == agentsConfigMap {
				set(s.agentList != nil, d)
				s.agentList = o
				continue
			}
		case *corev1.PersistentVolumeClaim:
			if o.Name == resultsClaim {
				set(s.results != nil, d)
				s.results = o
				continue
			}
		case *batchv1.Job:
			if o.Name == coordinatorName {
				set(s.job != nil, d)
				s.job = o
				continue
			}
		}
		t.Errorf("%s: unexpected %s %s", d.where, d.kind, m.GetName())
	}
	if s.ns == nil || s.secret == nil || s.server == nil || s.serverSvc == nil || s.agents == nil ||
		s.agentSvc == nil || s.agentList == nil || s.results == nil || s.job == nil {
		t.Fatalf("missing objects: %+v", s)
	}
	return s
}

// TestOverlays renders the base and each overlay and checks that the
// server, the agents and the coordinator fit together: selectors, ports,
// tokens, the agents list against the replicas, the coordinator's
// arguments parsed by pushbench's own flag definitions, and the pods'
// security settings.
func TestOverlays(t *testing.T) {
	for _, ov := range overlays {
		t.Run(ov.dir, func(t *testing.T) {
			docs := render(t, ov.dir)
			for _, d := range docs {
				m := d.obj.(metav1.Object)
				isTokens := d.kind == "Secret" && m.GetName() == tokenSecret
				if marked := m.GetLabels()[placeholderLabel] == "true"; marked != isTokens {
					t.Errorf("%s: %s %s: label %s=true must mark the token Secret alone", d.where, d.kind, m.GetName(), placeholderLabel)
				}
			}
			s := newStack(t, docs)
			for _, d := range docs {
				checkNames(t, d)
			}
			tokens := checkSecret(t, s.secret)
			serverPort := checkServer(t, s, tokens)
			agentPort := checkAgents(t, s, tokens)
			checkCoordinator(t, s, tokens, serverPort, agentPort, ov.agents, ov.clients)
			images := map[string]bool{}
			for _, c := range []corev1.Container{
				onlyContainer(t, "server", s.server.Spec.Template.Spec),
				onlyContainer(t, "agent", s.agents.Spec.Template.Spec),
				onlyContainer(t, "coordinator", s.job.Spec.Template.Spec),
			} {
				images[c.Image] = true
				if !pushbenchImage.MatchString(c.Image) || strings.HasSuffix(c.Image, ":latest") {
					t.Errorf("container %s: image %q, want the pushbench image with its tag (not latest, which nodes may pull at different builds) or digest", c.Name, c.Image)
				}
			}
			if len(images) != 1 {
				t.Errorf("the server, the agents and the coordinator run different images %v: agents refuse a coordinator of another version", images)
			}
			checkPodSecurity(t, "Deployment "+serverName, s.server.Spec.Template.Spec)
			checkPodSecurity(t, "StatefulSet "+agentName, s.agents.Spec.Template.Spec)
			checkPodSecurity(t, "Job "+coordinatorName, s.job.Spec.Template.Spec)
		})
	}
}

// pushbenchImage is the pushbench image, from any registry (set with
// kustomize's images), with a tag or a digest.
var pushbenchImage = regexp.MustCompile(`^([^/]+/)*pushbench(:[A-Za-z0-9_][A-Za-z0-9_.-]*|@sha256:[0-9a-f]{64})$`)

// checkNames checks what strict decoding does not: that the object's
// name, labels, and its containers' and ports' names are ones the API
// server accepts.
func checkNames(t *testing.T, d document) {
	m := d.obj.(metav1.Object)
	bad := func(what string, errs []string) {
		if len(errs) > 0 {
			t.Errorf("%s: %s: %s", d.where, what, strings.Join(errs, "; "))
		}
	}
	bad("name "+m.GetName(), validation.IsDNS1123Subdomain(m.GetName()))
	if _, ok := d.obj.(*corev1.Service); ok {
		bad("Service name "+m.GetName(), validation.IsDNS1035Label(m.GetName()))
	}
	var pod *corev1.PodTemplateSpec
	switch o := d.obj.(type) {
	case *appsv1.Deployment:
		pod = &o.Spec.Template
	case *appsv1.StatefulSet:
		pod = &o.Spec.Template
	case *batchv1.Job:
		pod = &o.Spec.Template
	case *corev1.Service:
		for _, p := range o.Spec.Ports {
			bad("port name "+p.Name, validation.IsValidPortName(p.Name))
		}
	}
	labels := []map[string]string{m.GetLabels()}
	if pod != nil {
		labels = append(labels, pod.Labels)
		for _, c := range append(slices.Clone(pod.Spec.InitContainers), pod.Spec.Containers...) {
			bad("container name "+c.Name, validation.IsDNS1123Label(c.Name))
			for _, p := range c.Ports {
				bad("port name "+p.Name, validation.IsValidPortName(p.Name))
			}
			for _, e := range c.Env {
				bad("variable "+e.Name, validation.IsEnvVarName(e.Name))
			}
		}
	}
	for _, l := range labels {
		for k, v := range l {
			bad("label key "+k, validation.IsQualifiedName(k))
			bad("label "+k+" value "+v, validation.IsValidLabelValue(v))
		}
	}
}

// checkSecret returns the tokens by key.
func checkSecret(t *testing.T, sec *corev1.Secret) map[string]string {
	tokens := map[string]string{}
	for k, v := range sec.Data {
		tokens[k] = string(v)
	}
	for k, v := range sec.StringData {
		tokens[k] = v
	}
	for _, k := range []string{serverTokenKey, agentTokenKey} {
		if len(tokens[k]) < servers.MinTokenLen {
			t.Errorf("Secret %s: %s has %d characters, want at least %d", sec.Name, k, len(tokens[k]), servers.MinTokenLen)
		}
	}
	return tokens
}

// checkServer checks the server's Deployment, its arguments (parsed by
// `pushbench serve`'s own flags) and its Service, and returns the
// Service's port.
func checkServer(t *testing.T, s stack, tokens map[string]string) int32 {
	d := s.server
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		t.Errorf("Deployment %s: want 1 replica (every client subscribes to one hub)", d.Name)
	}
	podLabels := d.Spec.Template.Labels
	checkSelector(t, "Deployment "+d.Name, d.Spec.Selector, podLabels)
	c := onlyContainer(t, "server", d.Spec.Template.Spec)
	args := expandArgs(t, c, s.secret, tokens)
	if len(args) == 0 || args[0] != "serve" {
		t.Fatalf("server args %q: want serve first", args)
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	flags := servers.AddFlags(fs)
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 {
		t.Fatalf("server args %q: %v %q", args, err, fs.Args())
	}
	cfg, _, err := flags()
	if err != nil {
		t.Fatalf("server args %q: %v", args, err)
	}
	if cfg.Token != tokens[serverTokenKey] {
		t.Errorf("server --token is not the Secret's %s", serverTokenKey)
	}
	port := listenPort(t, "server --addr", cfg.Addr)
	if got := containerPort(c, intstr.FromInt32(port)); got != port {
		t.Errorf("server listens on %d but declares no such containerPort", port)
	}
	checkReadiness(t, c, port)

	svc := s.serverSvc
	if svc.Spec.Type != "" && svc.Spec.Type != corev1.ServiceTypeClusterIP {
		t.Errorf("Service %s: type %s, want ClusterIP", svc.Name, svc.Spec.Type)
	}
	checkServiceSelects(t, svc, podLabels, s.agents.Spec.Template.Labels, s.job.Spec.Template.Labels)
	if len(svc.Spec.Ports) != 1 {
		t.Fatalf("Service %s: %d ports, want 1", svc.Name, len(svc.Spec.Ports))
	}
	sp := svc.Spec.Ports[0]
	if got := containerPort(c, sp.TargetPort); got != port {
		t.Errorf("Service %s: targetPort %s is container port %d, the server listens on %d", svc.Name, sp.TargetPort.String(), got, port)
	}
	return sp.Port
}

// checkAgents checks the agents' StatefulSet, their arguments and their
// headless Service, and returns the agents' port.
func checkAgents(t *testing.T, s stack, tokens map[string]string) int32 {
	st := s.agents
	podLabels := st.Spec.Template.Labels
	checkSelector(t, "StatefulSet "+st.Name, st.Spec.Selector, podLabels)
	if st.Spec.ServiceName != s.agentSvc.Name {
		t.Errorf("StatefulSet %s: serviceName %q, want its headless Service %s", st.Name, st.Spec.ServiceName, s.agentSvc.Name)
	}
	if st.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		t.Errorf("StatefulSet %s: podManagementPolicy %q, want Parallel", st.Name, st.Spec.PodManagementPolicy)
	}
	if st.Spec.Replicas == nil || *st.Spec.Replicas < 1 {
		t.Fatalf("StatefulSet %s: no replicas", st.Name)
	}
	c := onlyContainer(t, "agent", st.Spec.Template.Spec)
	args := expandArgs(t, c, s.secret, tokens)
	if len(args) == 0 || args[0] != "agent" {
		t.Fatalf("agent args %q: want agent first", args)
	}
	// `pushbench agent` parses these in bench.AgentMain, which also listens.
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	listen := fs.String("listen", "", "")
	token := fs.String("token", "", "")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 {
		t.Fatalf("agent args %q: %v %q", args, err, fs.Args())
	}
	if *token != tokens[agentTokenKey] {
		t.Errorf("agent --token is not the Secret's %s", agentTokenKey)
	}
	port := listenPort(t, "agent --listen", *listen)
	if got := containerPort(c, intstr.FromInt32(port)); got != port {
		t.Errorf("agent listens on %d but declares no such containerPort", port)
	}
	checkReadiness(t, c, port)

	svc := s.agentSvc
	if svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("Service %s: clusterIP %q, want None (headless: one DNS name per agent)", svc.Name, svc.Spec.ClusterIP)
	}
	checkServiceSelects(t, svc, podLabels, s.server.Spec.Template.Labels, s.job.Spec.Template.Labels)
	if len(svc.Spec.Ports) != 1 {
		t.Fatalf("Service %s: %d ports, want 1", svc.Name, len(svc.Spec.Ports))
	}
	sp := svc.Spec.Ports[0]
	if sp.Port != port || containerPort(c, sp.TargetPort) != port {
		t.Errorf("Service %s: port %d targetPort %s, want both the agents' %d", svc.Name, sp.Port, sp.TargetPort.String(), port)
	}
	return port
}

// checkCoordinator checks the Job: no retry, the agents list against the
// StatefulSet, its arguments parsed by `pushbench run`'s flag definitions,
// its volumes, and the init container that waits for the agents.
func checkCoordinator(t *testing.T, s stack, tokens map[string]string, serverPort, agentPort int32, wantAgents, wantClients int) {
	job := s.job
	if job.Spec.BackoffLimit == nil || *job.Spec.BackoffLimit != 0 {
		t.Errorf("Job %s: backoffLimit must be 0: a failed run is a result, not a step to retry", job.Name)
	}
	if job.Spec.ActiveDeadlineSeconds == nil || *job.Spec.ActiveDeadlineSeconds <= 0 {
		t.Errorf("Job %s: no activeDeadlineSeconds", job.Name)
	}
	pod := job.Spec.Template.Spec
	if pod.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("Job %s: restartPolicy %q, want Never", job.Name, pod.RestartPolicy)
	}
	c := onlyContainer(t, "coordinator", pod)
	args := expandArgs(t, c, s.secret, tokens)
	if len(args) == 0 || args[0] != "run" {
		t.Fatalf("coordinator args %q: want run first", args)
	}

	// The agents list: one line per replica, named as the StatefulSet
	// names its pods under its headless Service, read by pushbench's parser.
	replicas := int(*s.agents.Spec.Replicas)
	if replicas != wantAgents {
		t.Errorf("%d agent replicas, want %d", replicas, wantAgents)
	}
	var want []string
	for i := range replicas {
		want = append(want, fmt.Sprintf("%s-%d.%s:%d", s.agents.Name, i, s.agentSvc.Name, agentPort))
	}
	list, ok := s.agentList.Data[agentsKey]
	if !ok {
		t.Fatalf("ConfigMap %s: no key %s", s.agentList.Name, agentsKey)
	}
	got, err := bench.ParseAgents("", []byte(list))
	if err != nil {
		t.Fatalf("ConfigMap %s: %v", s.agentList.Name, err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("ConfigMap %s lists %q; the StatefulSet's %d replicas are %q", s.agentList.Name, got, replicas, want)
	}

	// `pushbench run`'s flags: the scenario's and the agents' are
	// pushbench's own definitions, the rest mirror cmd/pushbench/run.go.
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	scenario := bench.ScenarioFlags(fs)
	agentFlags := bench.AddAgentFlags(fs)
	out := fs.String("out", "", "")
	server := fs.String("server", "", "")
	token := fs.String("token", "", "")
	fs.Bool("quiet", false, "")
	fs.Bool("pin", false, "")
	fs.String("server-cmd", "", "")
	// --agents-file names the mounted ConfigMap; the parser reads a copy.
	agentsFile := ""
	for i := 1; i+1 < len(args); i++ {
		if args[i] == "--agents-file" {
			agentsFile = args[i+1]
			local := filepath.Join(t.TempDir(), "agents")
			if err := os.WriteFile(local, []byte(list), 0o644); err != nil {
				t.Fatal(err)
			}
			args = slices.Clone(args)
			args[i+1] = local
		}
	}
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 {
		t.Fatalf("coordinator args %q: %v %q", args, err, fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, f := range []string{"server", "token", "agents-file", "agent-token", "transport", "clients", "out", "quiet"} {
		if !set[f] {
			t.Errorf("coordinator args %q: no --%s", args, f)
		}
	}
	if set["agents"] || set["local-share"] {
		t.Errorf("coordinator args: the agents come from --agents-file alone, and it runs no clients itself")
	}
	sc, err := scenario()
	if err != nil {
		t.Fatalf("coordinator args: %v", err)
	}
	if err := sc.Validate(); err != nil {
		t.Fatalf("coordinator args: %v", err)
	}
	if sc.Workload != bench.WorkloadBroadcast || sc.Client != bench.ClientGo {
		t.Errorf("coordinator: workload %s, client %s: --server runs the broadcast workload of Go clients", sc.Workload, sc.Client)
	}
	as, err := agentFlags()
	if err != nil {
		t.Fatalf("coordinator args: %v", err)
	}
	if !slices.Equal(as.Agents, want) {
		t.Errorf("coordinator agents %q, want %q", as.Agents, want)
	}
	if as.Token != tokens[agentTokenKey] {
		t.Errorf("coordinator --agent-token is not the Secret's %s", agentTokenKey)
	}
	if *token != tokens[serverTokenKey] {
		t.Errorf("coordinator --token is not the Secret's %s", serverTokenKey)
	}
	if sc.Clients != wantClients {
		t.Errorf("coordinator --clients %d, want %d", sc.Clients, wantClients)
	}
	shares, err := bench.Shares(sc.Clients, as.LocalShare, len(as.Agents))
	if err != nil {
		t.Fatalf("coordinator: %v", err)
	}
	for i, n := range shares {
		if n > maxAgentShare {
			t.Errorf("agent %d gets %d clients, above the %d one agent is given here", i, n, maxAgentShare)
		}
	}
	t.Logf("%d clients over %d agents: %v", sc.Clients, len(shares), shares)

	u, err := url.Parse(*server)
	if err != nil || u.Scheme != "http" || u.Hostname() != s.serverSvc.Name || u.Port() != strconv.Itoa(int(serverPort)) {
		t.Errorf("coordinator --server %q, want http://%s:%d (the server's Service)", *server, s.serverSvc.Name, serverPort)
	}

	// The volumes: the agents list where --agents-file reads it, the
	// results on the claim.
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
	}
	if !mountedFile(c, vols, agentsFile, s.agentList.Name, agentsKey) {
		t.Errorf("coordinator --agents-file %s: not the key agents of ConfigMap %s as mounted", agentsFile, s.agentList.Name)
	}
	onClaim := false
	for _, m := range c.VolumeMounts {
		v := vols[m.Name]
		if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == s.results.Name && !m.ReadOnly &&
			strings.HasPrefix(*out, strings.TrimSuffix(m.MountPath, "/")+"/") {
			onClaim = true
		}
	}
	if !onClaim {
		t.Errorf("coordinator --out %s: not on a writable mount of claim %s", *out, s.results.Name)
	}
	if pod.SecurityContext == nil || pod.SecurityContext.FSGroup == nil {
		t.Errorf("Job %s: no fsGroup: a non-root coordinator may not write the results volume", job.Name)
	}

	// The init container waits for the server and every listed agent, so
	// the Job can be applied with the rest (the coordinator refuses an
	// unreachable agent, and the Job does not retry).
	if len(pod.InitContainers) != 1 {
		t.Fatalf("Job %s: %d init containers, want 1 that waits for the agents", job.Name, len(pod.InitContainers))
	}
	ic := pod.InitContainers[0]
	script := strings.Join(append(slices.Clone(ic.Command), ic.Args...), " ")
	if !strings.Contains(script, fmt.Sprintf("wait_for %s %d", s.serverSvc.Name, serverPort)) {
		t.Errorf("init container %s does not wait for %s:%d", ic.Name, s.serverSvc.Name, serverPort)
	}
	if !strings.Contains(script, agentsFile) || !mountedFile(ic, vols, agentsFile, s.agentList.Name, agentsKey) {
		t.Errorf("init container %s does not read the agents list at %s", ic.Name, agentsFile)
	}
	if varRef.MatchString(script) {
		t.Errorf("init container %s: $(NAME) in its script is Kubernetes' variable syntax; use ${NAME}", ic.Name)
	}
}

// mountedFile says whether file is key of ConfigMap cm as c mounts it.
func mountedFile(c corev1.Container, vols map[string]corev1.Volume, file, cm, key string) bool {
	for _, m := range c.VolumeMounts {
		v := vols[m.Name]
		if v.ConfigMap == nil || v.ConfigMap.Name != cm || m.SubPath != "" {
			continue
		}
		rel, ok := strings.CutPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/")
		if !ok {
			continue
		}
		if len(v.ConfigMap.Items) == 0 {
			return rel == key
		}
		for _, it := range v.ConfigMap.Items {
			if it.Key == key && it.Path == rel {
				return true
			}
		}
	}
	return false
}

// onlyContainer is the pod's one container, which must be named name.
func onlyContainer(t *testing.T, name string, pod corev1.PodSpec) corev1.Container {
	t.Helper()
	if len(pod.Containers) != 1 || pod.Containers[0].Name != name {
		t.Fatalf("want one container %s, have %d", name, len(pod.Containers))
	}
	return pod.Containers[0]
}

var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// expandArgs is the container's args as the kubelet passes them: $(NAME)
// replaced by the container's variable NAME (a value, or a key of the
// token Secret). A reference to an undefined variable would be passed
// as is: it fails the test.
func expandArgs(t *testing.T, c corev1.Container, sec *corev1.Secret, tokens map[string]string) []string {
	t.Helper()
	if len(c.Command) > 0 {
		t.Errorf("container %s: command %q overrides the image's entrypoint /pushbench", c.Name, c.Command)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			v, ok := tokens[ref.Key]
			if ref.Name != sec.Name || !ok {
				t.Errorf("container %s: %s from Secret %s key %s, which the manifests do not define", c.Name, e.Name, ref.Name, ref.Key)
			}
			env[e.Name] = v
		default:
			t.Errorf("container %s: %s: only values and Secret keys are expected", c.Name, e.Name)
		}
	}
	out := make([]string, len(c.Args))
	for i, a := range c.Args {
		out[i] = varRef.ReplaceAllStringFunc(a, func(ref string) string {
			name := varRef.FindStringSubmatch(ref)[1]
			v, ok := env[name]
			if !ok {
				t.Errorf("container %s: argument %q names %s, which is not among its variables", c.Name, a, name)
				return ref
			}
			return v
		})
	}
	return out
}

// listenPort is the port of a listen address, which must be on every
// interface (the pod's address, not loopback).
func listenPort(t *testing.T, what, addr string) int32 {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s %q: %v", what, addr, err)
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		t.Errorf("%s %q: listen on 0.0.0.0, the pod's every address", what, addr)
	}
	n, err := strconv.ParseInt(port, 10, 32)
	if err != nil || n <= 0 {
		t.Fatalf("%s %q: bad port", what, addr)
	}
	return int32(n)
}

// containerPort resolves a port by number or name to one of the
// container's ports; 0 if it has none such.
func containerPort(c corev1.Container, p intstr.IntOrString) int32 {
	for _, cp := range c.Ports {
		if (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) || (p.Type == intstr.String && cp.Name == p.StrVal) {
			return cp.ContainerPort
		}
	}
	return 0
}

// checkReadiness wants a TCP readiness probe on the listening port (the
// agents' HTTP API needs the token, which a plain httpGet lacks).
func checkReadiness(t *testing.T, c corev1.Container, port int32) {
	t.Helper()
	p := c.ReadinessProbe
	if p == nil || p.TCPSocket == nil {
		t.Errorf("container %s: no tcpSocket readiness probe", c.Name)
		return
	}
	if got := containerPort(c, p.TCPSocket.Port); got != port {
		t.Errorf("container %s: readiness probe on %s, it listens on %d", c.Name, p.TCPSocket.Port.String(), port)
	}
}

// checkSelector wants a label selector that matches the pod template.
func checkSelector(t *testing.T, what string, sel *metav1.LabelSelector, podLabels map[string]string) {
	t.Helper()
	if sel == nil || len(sel.MatchExpressions) > 0 || !subset(sel.MatchLabels, podLabels) {
		t.Errorf("%s: selector %v does not match its pods' labels %v", what, sel, podLabels)
	}
}

// checkServiceSelects wants svc to select pods labelled mine and none of
// the others.
func checkServiceSelects(t *testing.T, svc *corev1.Service, mine map[string]string, others ...map[string]string) {
	t.Helper()
	if !subset(svc.Spec.Selector, mine) {
		t.Errorf("Service %s: selector %v does not match the pods' labels %v", svc.Name, svc.Spec.Selector, mine)
	}
	for _, o := range others {
		if subset(svc.Spec.Selector, o) {
			t.Errorf("Service %s: selector %v also matches other pods, labelled %v", svc.Name, svc.Spec.Selector, o)
		}
	}
}

// subset says whether sel is not empty and every label of it is in labels.
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

// checkPodSecurity wants every container of a pod, init containers too,
// to run as non-root without privilege escalation or capabilities, with
// resources requested and limited.
func checkPodSecurity(t *testing.T, what string, pod corev1.PodSpec) {
	psc := pod.SecurityContext
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: want seccompProfile RuntimeDefault", what)
	}
	for _, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
		w := what + " container " + c.Name
		sc := c.SecurityContext
		nonRoot := psc != nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot
		if sc != nil && sc.RunAsNonRoot != nil {
			nonRoot = *sc.RunAsNonRoot
		}
		if !nonRoot {
			t.Errorf("%s: runAsNonRoot is not true", w)
		}
		uid := (*int64)(nil)
		if psc != nil {
			uid = psc.RunAsUser
		}
		if sc == nil {
			t.Errorf("%s: no securityContext", w)
			sc = &corev1.SecurityContext{}
		}
		if sc.RunAsUser != nil {
			uid = sc.RunAsUser
		}
		if uid != nil && *uid == 0 {
			t.Errorf("%s: runAsUser 0", w)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: allowPrivilegeEscalation is not false", w)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			t.Errorf("%s: capabilities: want drop ALL and no add", w)
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("%s: privileged", w)
		}
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if c.Resources.Requests.Name(r, "").IsZero() || c.Resources.Limits.Name(r, "").IsZero() {
				t.Errorf("%s: no %s request or limit", w, r)
			}
		}
	}
}

// TestResultsReader checks the helper pod that copies the results out.
func TestResultsReader(t *testing.T) {
	b, err := os.ReadFile("tools/results-reader.yaml")
	if err != nil {
		t.Fatal(err)
	}
	docs := decodeAll(t, "tools/results-reader.yaml", b)
	if len(docs) != 1 {
		t.Fatalf("%d documents, want one Pod", len(docs))
	}
	pod, ok := docs[0].obj.(*corev1.Pod)
	if !ok || pod.Name != readerPod || pod.Namespace != namespace {
		t.Fatalf("want Pod %s in %s", readerPod, namespace)
	}
	checkPodSecurity(t, "Pod "+pod.Name, pod.Spec)
	var claim string
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			claim = v.PersistentVolumeClaim.ClaimName
			if !v.PersistentVolumeClaim.ReadOnly {
				t.Errorf("volume %s: mount the results read-only", v.Name)
			}
		}
	}
	if claim != resultsClaim {
		t.Errorf("the reader mounts claim %q, want %s", claim, resultsClaim)
	}
}

// TestReadme checks that every deploy/k8s path README.md names exists,
// and that it applies the manifests without the placeholder tokens.
func TestReadme(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(placeholderSelector)) {
		t.Errorf("README.md never applies with %s", placeholderSelector)
	}
	paths := regexp.MustCompile(`deploy/k8s/[A-Za-z0-9_./-]*[A-Za-z0-9_/]`).FindAll(b, -1)
	if len(paths) == 0 {
		t.Fatal("README.md names no deploy/k8s path")
	}
	for _, p := range paths {
		rel := strings.TrimPrefix(string(bytes.TrimSuffix(p, []byte("/"))), "deploy/k8s/")
		if _, err := os.Stat(filepath.FromSlash(rel)); err != nil {
			t.Errorf("README.md names %s: %v", p, err)
		}
	}
}
