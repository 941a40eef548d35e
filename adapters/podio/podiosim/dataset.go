package podiosim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Dataset is a self-contained Podio world: people, organizations, spaces, memberships, OAuth clients
// and apps. It is built deterministically (fixed seeds, no map-order dependence) so that ids, names
// and memberships are identical on every run. New copies the Dataset it is given, so one Dataset
// may seed many servers.
type Dataset struct {
	name      string
	people    map[int64]*person
	personIDs []int64 // creation order, for deterministic listings
	orgs      map[int64]*org
	orgIDs    []int64
	spaces    map[int64]*space
	spaceIDs  []int64 // ascending; deleted spaces are removed
	clients   map[string]*client
	apps      map[int64]*app

	nextUser, nextProfile, nextSpace int64
}

// Name reports the preset the dataset was built from ("demo" or "large").
func (d *Dataset) Name() string { return d.name }

type person struct {
	userID, profileID int64
	name, mail        string
	contact           // the editable contact fields of the profile (PUT /user/profile/)
	password          string
	status            string // "active" or "inactive"
	employee          bool
	locale, timezone  string
	createdOn         time.Time
	activatedOn       time.Time // zero for invitees who never activated their account
	lastSeenOn        time.Time
	avatar            int64 // file id; 0 = no picture
}

// contact holds the profile fields a person may change about themself (podio-api.md §3.4).
// Multi-valued fields are slices; an update replaces a slice, never edits it in place.
type contact struct {
	title, location, phone, address, url, skill, im []string

	about, organization, department, zip, city, state, country, skype, linkedin, twitter string
}

// invitee reports a person who was invited by mail and never activated an account; Podio shows
// such people with minimal data.
func (p *person) invitee() bool { return p.activatedOn.IsZero() }

type org struct {
	id        int64
	name      string
	label     string
	userLimit int
	createdOn time.Time
	createdBy int64
	members   map[int64]*orgMember
}

type orgMember struct {
	userID   int64
	role     string // "admin" or "regular"
	invited  bool
	joinedOn time.Time
}

type space struct {
	id, orgID    int64
	name, label  string
	description  string
	privacy      string // "open" or "closed"
	archived     bool
	createdOn    time.Time
	lastActivity time.Time
	createdBy    int64
	members      map[int64]*spaceMember
}

type spaceMember struct {
	userID    int64
	role      string // "light", "regular" or "admin"
	invited   bool
	invitedOn time.Time
	startedOn time.Time // zero while invited
	grants    int
}

type client struct {
	id, secret string
	domains    []string
}

type app struct {
	id    int64
	token string
}

func newDataset(name string) *Dataset {
	return &Dataset{
		name:        name,
		people:      map[int64]*person{},
		orgs:        map[int64]*org{},
		spaces:      map[int64]*space{},
		clients:     map[string]*client{},
		apps:        map[int64]*app{},
		nextUser:    1000001,
		nextProfile: 2000001,
		nextSpace:   40001,
	}
}

// clone deep-copies the dataset so that a server can mutate its own world.
func (d *Dataset) clone() *Dataset {
	c := *d
	c.people = make(map[int64]*person, len(d.people))
	for id, p := range d.people {
		cp := *p
		c.people[id] = &cp
	}
	c.personIDs = slices.Clone(d.personIDs)
	c.orgs = make(map[int64]*org, len(d.orgs))
	for id, o := range d.orgs {
		co := *o
		co.members = make(map[int64]*orgMember, len(o.members))
		for uid, m := range o.members {
			cm := *m
			co.members[uid] = &cm
		}
		c.orgs[id] = &co
	}
	c.orgIDs = slices.Clone(d.orgIDs)
	c.spaces = make(map[int64]*space, len(d.spaces))
	for id, s := range d.spaces {
		cs := *s
		cs.members = make(map[int64]*spaceMember, len(s.members))
		for uid, m := range s.members {
			cm := *m
			cs.members[uid] = &cm
		}
		c.spaces[id] = &cs
	}
	c.spaceIDs = slices.Clone(d.spaceIDs)
	c.clients = make(map[string]*client, len(d.clients))
	for id, cl := range d.clients {
		cc := *cl
		cc.domains = slices.Clone(cl.domains)
		c.clients[id] = &cc
	}
	c.apps = make(map[int64]*app, len(d.apps))
	for id, a := range d.apps {
		ca := *a
		c.apps[id] = &ca
	}
	return &c
}

func (d *Dataset) addPerson(name, mail string, employee bool, created time.Time) *person {
	p := &person{
		userID: d.nextUser, profileID: d.nextProfile,
		name: name, mail: mail, password: "demo", status: "active", employee: employee,
		locale: "en_GB", timezone: "Europe/London",
		createdOn: created, activatedOn: created.Add(7 * time.Minute), lastSeenOn: created.Add(24 * time.Hour),
	}
	p.avatar = 90000000 + p.userID%10000000
	d.nextUser++
	d.nextProfile++
	d.people[p.userID] = p
	d.personIDs = append(d.personIDs, p.userID)
	return p
}

// addInvitee creates the placeholder account Podio makes for a mail address that matched nobody.
func (d *Dataset) addInvitee(mail string, on time.Time) *person {
	p := d.addPerson(mail, mail, false, on)
	p.status = "inactive"
	p.activatedOn = time.Time{}
	p.lastSeenOn = time.Time{}
	p.avatar = 0
	p.password = ""
	return p
}

func (d *Dataset) personByMail(mail string) *person {
	for _, id := range d.personIDs {
		if p := d.people[id]; strings.EqualFold(p.mail, mail) {
			return p
		}
	}
	return nil
}

func (d *Dataset) personByProfile(profileID int64) *person {
	for _, id := range d.personIDs {
		if p := d.people[id]; p.profileID == profileID {
			return p
		}
	}
	return nil
}

func (d *Dataset) addOrg(id int64, name, label string, userLimit int, created time.Time, by int64) *org {
	o := &org{id: id, name: name, label: label, userLimit: userLimit, createdOn: created, createdBy: by, members: map[int64]*orgMember{}}
	d.orgs[id] = o
	d.orgIDs = append(d.orgIDs, id)
	return o
}

func (d *Dataset) addSpace(o *org, name, label, privacy string, created time.Time, by int64) *space {
	s := &space{
		id: d.nextSpace, orgID: o.id, name: name, label: label, privacy: privacy,
		description: "Workspace for " + name + ".", createdOn: created, lastActivity: created.Add(30 * 24 * time.Hour),
		createdBy: by, members: map[int64]*spaceMember{},
	}
	d.nextSpace++
	d.spaces[s.id] = s
	d.spaceIDs = append(d.spaceIDs, s.id)
	return s
}

// joinOrg makes p a member of o unless already one (an existing membership is kept as it is).
func (d *Dataset) joinOrg(o *org, p *person, role string, on time.Time) *orgMember {
	if m := o.members[p.userID]; m != nil {
		return m
	}
	m := &orgMember{userID: p.userID, role: role, invited: p.invitee(), joinedOn: on}
	o.members[p.userID] = m
	return m
}

// joinSpace adds p to s with role (active, or invited when p never activated) and makes p an org member.
func (d *Dataset) joinSpace(s *space, p *person, role string, on time.Time) *spaceMember {
	if m := s.members[p.userID]; m != nil {
		return m
	}
	d.joinOrg(d.orgs[s.orgID], p, "regular", on)
	m := &spaceMember{userID: p.userID, role: role, invitedOn: on}
	if p.invitee() || p.status != "active" {
		m.invited = true
	} else {
		m.startedOn = on.Add(5 * time.Minute)
	}
	s.members[p.userID] = m
	return m
}

func (d *Dataset) deleteSpace(id int64) {
	delete(d.spaces, id)
	d.spaceIDs = slices.DeleteFunc(d.spaceIDs, func(x int64) bool { return x == id })
}

// orgSpaces lists the spaces of an org in ascending id order.
func (d *Dataset) orgSpaces(orgID int64) []*space {
	var out []*space
	for _, id := range d.spaceIDs {
		if s := d.spaces[id]; s.orgID == orgID {
			out = append(out, s)
		}
	}
	return out
}

func (d *Dataset) addDemoClients() {
	d.clients["demo-client"] = &client{id: "demo-client", secret: "demo-secret", domains: []string{"localhost", "127.0.0.1", "example.com"}}
	d.apps[5001] = &app{id: 5001, token: "demo-app-token"}
}

var (
	firstNames = []string{"Ada", "Ben", "Chloe", "Daniel", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas",
		"Kaito", "Lena", "Mateo", "Nora", "Oscar", "Priya", "Quentin", "Rosa", "Stefan", "Tara",
		"Umar", "Vera", "Wiktor", "Xenia", "Yusuf", "Zoe", "Amara", "Bruno", "Carmen", "Dmitri",
		"Esther", "Felix", "Hana", "Ivan", "Julia", "Kofi", "Liam", "Maya", "Nils", "Olga"}
	lastNames = []string{"Andersen", "Baker", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Hansen", "Ito", "Jensen",
		"Kowalski", "Larsen", "Moreau", "Nakamura", "Okafor", "Petrov", "Quinn", "Rossi", "Schmidt", "Tanaka",
		"Umarov", "Varga", "Weber", "Xu", "Yilmaz", "Zhang", "Berg", "Conti", "Dahl", "Novak"}
	externalDomains = []string{"acme-consulting.example", "freelance.example", "brightlaw.example", "pixelworks.example"}
)

// demoEpoch anchors every demo timestamp so the data does not depend on when it is built.
var demoEpoch = time.Date(2023, 1, 2, 9, 0, 0, 0, time.UTC)

// Demo builds the small hand-shaped demo dataset documented in README.md: 2 organizations,
// 8 spaces and 60 people (admin@demo.example, member@demo.example, employees, externals, invitees).
func Demo() *Dataset {
	d := newDataset("demo")
	d.addDemoClients()
	rng := rand.New(rand.NewPCG(20240601, 7))
	day := func(n int) time.Time { return demoEpoch.Add(time.Duration(n) * 24 * time.Hour) }

	admin := d.addPerson("Alex Morgan", "admin@demo.example", true, day(0))
	admin.title = []string{"Operations Director"}
	admin.phone = []string{"+44 20 7946 0001"}
	member := d.addPerson("Sam Taylor", "member@demo.example", true, day(3))
	member.title = []string{"Marketing Lead"}
	grace := d.addPerson("Grace Whitfield", "grace.whitfield@northwind.example", true, day(1))
	grace.title = []string{"Chief Executive Officer"}
	henry := d.addPerson("Henry Osei", "henry.osei@northwind.example", true, day(2))
	henry.title = []string{"Chief Financial Officer"}

	nw := d.addOrg(3001, "Northwind Traders", "northwindtraders", 100, day(0), admin.userID)
	bf := d.addOrg(3002, "Bluefin Labs", "bluefinlabs", 50, day(10), admin.userID)
	d.joinOrg(nw, admin, "admin", day(0))
	d.joinOrg(bf, admin, "admin", day(10))
	d.joinOrg(nw, member, "regular", day(3))
	d.joinOrg(nw, grace, "regular", day(1))
	d.joinOrg(nw, henry, "regular", day(2))

	sales := d.addSpace(nw, "Sales", "sales", "closed", day(5), admin.userID)
	marketing := d.addSpace(nw, "Marketing", "marketing", "closed", day(6), member.userID)
	engineering := d.addSpace(nw, "Engineering", "engineering", "closed", day(7), admin.userID)
	archive := d.addSpace(nw, "Archive 2023", "archive-2023", "closed", day(8), admin.userID)
	archive.archived = true
	board := d.addSpace(nw, "Board Room", "board-room", "closed", day(9), grace.userID)
	research := d.addSpace(bf, "Research", "research", "closed", day(11), admin.userID)
	labops := d.addSpace(bf, "Lab Operations", "lab-operations", "closed", day(12), admin.userID)
	community := d.addSpace(bf, "Community", "community", "open", day(13), admin.userID)

	d.joinSpace(sales, admin, "admin", day(5))
	d.joinSpace(sales, member, "regular", day(6))
	d.joinSpace(marketing, member, "admin", day(6))
	d.joinSpace(marketing, admin, "regular", day(7))
	d.joinSpace(engineering, admin, "admin", day(7))
	d.joinSpace(engineering, member, "light", day(8))
	d.joinSpace(archive, admin, "admin", day(8))
	d.joinSpace(board, grace, "admin", day(9))
	d.joinSpace(board, henry, "regular", day(9))
	d.joinSpace(research, admin, "admin", day(11))
	d.joinSpace(labops, admin, "admin", day(12))
	d.joinSpace(community, admin, "admin", day(13))

	nwSpaces := []*space{sales, marketing, engineering, archive}
	bfSpaces := []*space{research, labops, community}
	pickRole := func() string {
		switch x := rng.IntN(100); {
		case x < 12:
			return "admin"
		case x < 62:
			return "regular"
		default:
			return "light"
		}
	}
	for i := range 52 {
		first := firstNames[i%len(firstNames)]
		last := lastNames[(i*7+3)%len(lastNames)]
		employee := rng.IntN(100) < 75
		home := nw
		homeSpaces := nwSpaces
		domain := "northwind.example"
		if i%3 == 0 {
			home, homeSpaces, domain = bf, bfSpaces, "bluefin.example"
		}
		if !employee {
			domain = externalDomains[rng.IntN(len(externalDomains))]
		}
		p := d.addPerson(first+" "+last, strings.ToLower(first+"."+last)+"@"+domain, employee, day(14+rng.IntN(400)))
		p.title = []string{[]string{"Account Manager", "Designer", "Engineer", "Analyst", "Consultant", "Coordinator"}[rng.IntN(6)]}
		if rng.IntN(2) == 0 {
			p.phone = []string{fmt.Sprintf("+44 20 7946 %04d", 100+i)}
		}
		p.lastSeenOn = day(450 + rng.IntN(300)).Add(time.Duration(rng.IntN(86400)) * time.Second)
		joined := p.activatedOn
		d.joinOrg(home, p, "regular", joined)
		if i%11 == 5 {
			d.orgs[home.id].members[p.userID].role = "admin"
		}
		n := 1 + rng.IntN(3)
		for _, k := range rng.Perm(len(homeSpaces))[:min(n, len(homeSpaces))] {
			d.joinSpace(homeSpaces[k], p, pickRole(), joined.Add(time.Duration(k+1)*time.Hour))
		}
		if i%7 == 0 && home == nw { // a few people work in both organizations
			d.joinSpace(community, p, "light", joined.Add(48*time.Hour))
		}
	}
	for i, target := range []*space{sales, engineering, research, marketing} {
		p := d.addInvitee(fmt.Sprintf("new.colleague%d@%s", i+1, []string{"northwind.example", "gmail.example"}[i%2]), day(500+i))
		d.joinSpace(target, p, "regular", day(500+i))
	}
	return d
}

// LargeOptions sizes the generated "large" dataset. Zero values mean 1 org, 200 spaces, 20,000
// people and seed 1.
type LargeOptions struct {
	Seed                 int64
	Orgs, Spaces, People int
}

// Large generates a big deterministic dataset for load tests. It always contains admin@demo.example
// (org admin of every org and admin of every space) and member@demo.example (regular org member of
// the first org; admin, regular and light member of its first three spaces) plus the demo OAuth
// client and app, so scripts written against Demo work unchanged.
func Large(opts LargeOptions) *Dataset {
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	if opts.Orgs <= 0 {
		opts.Orgs = 1
	}
	if opts.Spaces <= 0 {
		opts.Spaces = 200
	}
	if opts.People <= 0 {
		opts.People = 20000
	}
	opts.Spaces = max(opts.Spaces, opts.Orgs)
	d := newDataset("large")
	d.addDemoClients()
	rng := rand.New(rand.NewPCG(uint64(opts.Seed), 0x5eed))
	day := func(n int) time.Time { return demoEpoch.Add(time.Duration(n) * 24 * time.Hour) }

	admin := d.addPerson("Alex Morgan", "admin@demo.example", true, day(0))
	member := d.addPerson("Sam Taylor", "member@demo.example", true, day(1))
	orgs := make([]*org, opts.Orgs)
	orgSpaces := make([][]*space, opts.Orgs)
	for i := range orgs {
		o := d.addOrg(int64(3001+i), fmt.Sprintf("Company %03d", i+1), fmt.Sprintf("company%03d", i+1), opts.People+1000, day(0), admin.userID)
		d.joinOrg(o, admin, "admin", day(0))
		orgs[i] = o
	}
	d.joinOrg(orgs[0], member, "regular", day(1))
	for i := range opts.Spaces {
		o := orgs[i%opts.Orgs]
		s := d.addSpace(o, fmt.Sprintf("Team %04d", i+1), fmt.Sprintf("team-%04d", i+1), "closed", day(2), admin.userID)
		if i%25 == 7 {
			s.privacy = "open"
		}
		d.joinSpace(s, admin, "admin", day(2))
		orgSpaces[i%opts.Orgs] = append(orgSpaces[i%opts.Orgs], s)
	}
	for i, role := range []string{"admin", "regular", "light"} {
		if i < len(orgSpaces[0]) {
			d.joinSpace(orgSpaces[0][i], member, role, day(3))
		}
	}
	for i := range max(opts.People-2, 0) {
		oi := rng.IntN(opts.Orgs)
		o := orgs[oi]
		first := firstNames[rng.IntN(len(firstNames))]
		last := lastNames[rng.IntN(len(lastNames))]
		employee := rng.IntN(100) < 80
		domain := o.label + ".example"
		if !employee {
			domain = externalDomains[rng.IntN(len(externalDomains))]
		}
		mail := fmt.Sprintf("%s.%s.%d@%s", strings.ToLower(first), strings.ToLower(last), i+1, domain)
		created := day(5 + rng.IntN(700))
		var p *person
		if rng.IntN(100) < 2 {
			p = d.addInvitee(mail, created)
		} else {
			p = d.addPerson(first+" "+last, mail, employee, created)
			p.lastSeenOn = day(700 + rng.IntN(60)).Add(time.Duration(rng.IntN(86400)) * time.Second)
		}
		d.joinOrg(o, p, "regular", created)
		if rng.IntN(200) == 0 {
			o.members[p.userID].role = "admin"
		}
		ss := orgSpaces[oi]
		for k := range 1 + rng.IntN(4) {
			role := "regular"
			switch x := rng.IntN(100); {
			case x < 5:
				role = "admin"
			case x < 35:
				role = "light"
			}
			d.joinSpace(ss[rng.IntN(len(ss))], p, role, created.Add(time.Duration(k+1)*time.Hour))
		}
	}
	return d
}

// DatasetByName returns a fresh dataset for a preset name: "demo" or "large" (default options).
func DatasetByName(name string) (*Dataset, error) {
	switch name {
	case "demo":
		return Demo(), nil
	case "large":
		return Large(LargeOptions{}), nil
	}
	return nil, fmt.Errorf("podiosim: unknown dataset %q (valid: demo, large)", name)
}
