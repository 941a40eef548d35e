package podiosim

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

type routeKind int

const (
	kindAPI   routeKind = iota // needs a token, counts against quota
	kindOAuth                  // OAuth endpoints: no token, no quota
)

// call carries one request through the handlers.
type call struct {
	r      *http.Request
	route  *route
	params map[string]string
	body   []byte
	form   url.Values // query values followed by form-body values
	tok    *accessToken
	now    time.Time
}

// reply is what a handler produces under the lock; it is written after the lock is released.
type reply struct {
	status  int
	body    any // JSON-encoded unless nil
	html    []byte
	perr    *podioError
	header  http.Header
	rlLimit int // X-Rate-Limit-* values; limit 0 = use general limit with nothing used
	rlLeft  int
}

type podioError struct {
	code, desc string
}

func errReply(status int, code, desc string) reply {
	return reply{status: status, perr: &podioError{code: code, desc: desc}}
}

func notFound(what string) reply {
	return errReply(http.StatusNotFound, "not_found", what+" not found")
}

func forbidden(why string) reply { return errReply(http.StatusForbidden, "forbidden", why) }

func invalidValue(why string) reply {
	return errReply(http.StatusBadRequest, "invalid_value", why)
}

type route struct {
	name   string
	method string
	segs   []string
	kind   routeKind
	h      func(*call) reply
}

func newRoute(name string, kind routeKind, h func(*call) reply) *route {
	method, pattern, _ := strings.Cut(name, " ")
	return &route{name: name, method: method, segs: splitPath(pattern), kind: kind, h: h}
}

// splitPath splits an escaped path into segments; a trailing slash yields an empty last segment,
// which keeps "/org/" and "/org" apart.
func splitPath(p string) []string { return strings.Split(strings.TrimPrefix(p, "/"), "/") }

// match finds the route for method and escaped path. It returns the route and its unescaped
// placeholder values; when the path exists only for other methods it returns their list instead.
// Routes are tried in table order, so literal routes listed first win over placeholders.
func match(routes []*route, method, escPath string) (*route, map[string]string, []string) {
	segs := splitPath(escPath)
	var allowed []string
	for _, rt := range routes {
		params, ok := matchSegs(rt.segs, segs)
		if !ok {
			continue
		}
		if rt.method != method {
			if !slices.Contains(allowed, rt.method) {
				allowed = append(allowed, rt.method)
			}
			continue
		}
		return rt, params, nil
	}
	return nil, nil, allowed
}

func matchSegs(pattern, segs []string) (map[string]string, bool) {
	if len(pattern) != len(segs) {
		return nil, false
	}
	var params map[string]string
	for i, p := range pattern {
		if !strings.HasPrefix(p, "{") {
			if p != segs[i] {
				return nil, false
			}
			continue
		}
		v, err := url.PathUnescape(segs[i])
		if err != nil || v == "" {
			return nil, false
		}
		// Numeric placeholders only bind segments that start like a number, so that the literal
		// sibling "v2" (GET /space/{id}/member/v2 without its slash) is a 404, not a bad id.
		if strings.HasSuffix(p, "_id}") || strings.HasSuffix(p, "_ids}") {
			if c := v[0]; (c < '0' || c > '9') && c != '-' {
				return nil, false
			}
		}
		if params == nil {
			params = map[string]string{}
		}
		params[p[1:len(p)-1]] = v
	}
	return params, true
}

func (s *Server) podioRoutes() []*route {
	return []*route{
		newRoute(RouteUser, kindAPI, s.getUser),
		newRoute(RouteUserStatus, kindAPI, s.getUserStatus),
		newRoute(RouteContactUser, kindAPI, s.getContactUser),
		newRoute(RouteUpdateUser, kindAPI, s.updateUser),
		newRoute(RouteUpdateProfile, kindAPI, s.updateProfile),
		newRoute(RouteUpdateProfileField, kindAPI, s.updateProfileField),
		newRoute(RouteOrgs, kindAPI, s.getOrgs),
		newRoute(RouteOrg, kindAPI, s.getOrg),
		newRoute(RouteOrgMembers, kindAPI, s.getOrgMembers),
		newRoute(RouteOrgMemberByMail, kindAPI, s.getOrgMemberByMail),
		newRoute(RouteEndMemberInfo, kindAPI, s.getEndMemberInfo),
		newRoute(RouteOrgMember, kindAPI, s.getOrgMember),
		newRoute(RouteEndOrgMember, kindAPI, s.endOrgMember),
		newRoute(RouteOrgSpaces, kindAPI, s.getOrgSpaces),
		newRoute(RouteOrgAllSpaces, kindAPI, s.getOrgAllSpaces),
		newRoute(RouteSpace, kindAPI, s.getSpace),
		newRoute(RouteSpaceMembers, kindAPI, s.getSpaceMembers),
		newRoute(RouteSpaceMembersV2, kindAPI, s.getSpaceMembersV2),
		newRoute(RouteSpaceMember, kindAPI, s.getSpaceMember),
		newRoute(RouteAddSpaceMember, kindAPI, s.addSpaceMembers),
		newRoute(RouteUpdateSpaceMember, kindAPI, s.updateSpaceMembers),
		newRoute(RouteEndSpaceMember, kindAPI, s.endSpaceMembers),
		newRoute(RouteToken, kindOAuth, s.postToken),
		newRoute(RouteTokenV2, kindOAuth, s.postTokenV2),
		newRoute(RouteAuthorize, kindOAuth, s.getAuthorize),
		newRoute(RouteAuthorizeSubmit, kindOAuth, s.postAuthorize),
	}
}
