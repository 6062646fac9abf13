// Package sdktest checks the Graph emulator with Microsoft's own Go SDK
// (msgraph-sdk-go), unchanged: reads, paging with the SDK's page iterator,
// and the writes a provisioner makes, with the errors the SDK decodes. It
// is a module of its own, so that usersync does not depend on the SDK.
package sdktest

import (
	"context"
	"errors"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
	abstractions "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoft/kiota-abstractions-go/authentication"
	msgraphsdk "github.com/microsoftgraph/msgraph-sdk-go"
	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"
	graphgroups "github.com/microsoftgraph/msgraph-sdk-go/groups"
	"github.com/microsoftgraph/msgraph-sdk-go/groupswithuniquename"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"
	graphusers "github.com/microsoftgraph/msgraph-sdk-go/users"
	"golang.org/x/oauth2/clientcredentials"

	graphemu "github.com/usersync/usersync/emulate/graph"
)

const secret = "sdk-test-secret"

// tokens gets access tokens from the emulator's token endpoint with the
// OAuth2 client-credentials grant, as an Entra app does.
type tokens struct {
	cfg   clientcredentials.Config
	hosts *authentication.AllowedHostsValidator
}

func (t *tokens) GetAuthorizationToken(ctx context.Context, u *url.URL, _ map[string]interface{}) (string, error) {
	tok, err := t.cfg.Token(ctx)
	if err != nil {
		return "", err
	}
	return tok.AccessToken, nil
}

func (t *tokens) GetAllowedHostsValidator() *authentication.AllowedHostsValidator { return t.hosts }

func client(t *testing.T) (*msgraphsdk.GraphServiceClient, *graphemu.Tenant) {
	t.Helper()
	tenant := graphemu.Generate(3, 30, 3)
	srv := httptest.NewServer(graphemu.NewServer(tenant, graphemu.Options{ClientID: "app-1", ClientSecret: secret}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	hosts, err := authentication.NewAllowedHostsValidatorErrorCheck([]string{u.Host})
	if err != nil {
		t.Fatal(err)
	}
	tp := &tokens{cfg: clientcredentials.Config{ClientID: "app-1", ClientSecret: secret,
		TokenURL: srv.URL + "/" + tenant.ID + "/oauth2/v2.0/token", Scopes: []string{srv.URL + "/.default"}}, hosts: hosts}
	adapter, err := msgraphsdk.NewGraphRequestAdapter(authentication.NewBaseBearerTokenAuthenticationProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	adapter.SetBaseUrl(srv.URL + "/v1.0")
	return msgraphsdk.NewGraphServiceClient(adapter), tenant
}

func odata(err error) (code, msg string) {
	var oe *odataerrors.ODataError
	if errors.As(err, &oe) && oe.GetErrorEscaped() != nil {
		return deref(oe.GetErrorEscaped().GetCode()), deref(oe.GetErrorEscaped().GetMessage())
	}
	return "", ""
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Reads: users with $select and $top, paged by the SDK's PageIterator;
// a group's members; a user by its principal name.
func TestSDKReads(t *testing.T) {
	c, tenant := client(t)
	ctx := context.Background()
	top := int32(7)
	page, err := c.Users().Get(ctx, &graphusers.UsersRequestBuilderGetRequestConfiguration{
		QueryParameters: &graphusers.UsersRequestBuilderGetQueryParameters{Select: []string{"id", "userPrincipalName"}, Top: &top}})
	if err != nil {
		t.Fatal(err)
	}
	it, err := msgraphcore.NewPageIterator[models.Userable](page, c.GetAdapter(), models.CreateUserCollectionResponseFromDiscriminatorValue)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	if err := it.Iterate(ctx, func(u models.Userable) bool { seen[deref(u.GetId())] = true; return true }); err != nil {
		t.Fatal(err)
	}
	if users, _ := tenant.Size(); len(seen) != users {
		t.Fatalf("the page iterator saw %d users, the tenant has %d", len(seen), users)
	}
	all := tenant.GroupsNamed("All Users")[0]
	members, err := c.Groups().ByGroupId(all.ID).Members().Get(ctx, nil)
	if err != nil || len(members.GetValue()) != len(all.Members) {
		t.Fatalf("members: %v %v", members, err)
	}
	if _, ok := members.GetValue()[0].(models.Userable); !ok {
		t.Fatalf("a member is not decoded as a user: %T", members.GetValue()[0])
	}
	first, _ := tenant.User(all.Members[0])
	u, err := c.Users().ByUserId(first.UserPrincipalName).Get(ctx, nil)
	if err != nil || deref(u.GetId()) != first.ID {
		t.Fatalf("user by principal name: %v %v", u, err)
	}
	_, err = c.Users().ByUserId("nobody@contoso.example").Get(ctx, nil)
	if code, _ := odata(err); code != "Request_ResourceNotFound" {
		t.Fatalf("missing user: %v (code %q)", err, code)
	}
}

// The writes a provisioner makes, through the SDK: create with members
// bound, add one by $ref (again: "already exist"), PATCH, remove by $ref,
// delete; the errors come back as the SDK's ODataError.
func TestSDKWrites(t *testing.T) {
	c, tenant := client(t)
	ctx := context.Background()
	all := tenant.GroupsNamed("All Users")[0]
	ref := func(id string) string { return "https://graph.microsoft.com/v1.0/directoryObjects/" + id }

	g := models.NewGroup()
	g.SetDisplayName(ptr("GROUPER-SECURITY-sdk"))
	g.SetMailNickname(ptr("grouper-security-sdk"))
	g.SetMailEnabled(ptr(false))
	g.SetSecurityEnabled(ptr(true))
	g.SetGroupTypes([]string{})
	g.SetAdditionalData(map[string]any{"members@odata.bind": []string{ref(all.Members[0]), ref(all.Members[1])}})
	made, err := c.Groups().Post(ctx, g, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := deref(made.GetId())
	if got, ok := tenant.Group(id); !ok || len(got.Members) != 2 || got.DisplayName != "GROUPER-SECURITY-sdk" {
		t.Fatalf("created: %+v %v", got, ok)
	}

	add := models.NewReferenceCreate()
	add.SetOdataId(ptr(ref(all.Members[2])))
	if err := c.Groups().ByGroupId(id).Members().Ref().Post(ctx, add, nil); err != nil {
		t.Fatal(err)
	}
	err = c.Groups().ByGroupId(id).Members().Ref().Post(ctx, add, nil)
	if code, msg := odata(err); code != "Request_BadRequest" || !strings.Contains(msg, "already exist") {
		t.Fatalf("adding a member twice: %v (%q %q)", err, code, msg)
	}

	patch := models.NewGroup()
	patch.SetDescription(ptr("Testing of Azure Security Groups"))
	if _, err := c.Groups().ByGroupId(id).Patch(ctx, patch, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Groups().ByGroupId(id).Members().ByDirectoryObjectId(all.Members[0]).Ref().Delete(ctx, nil); err != nil {
		t.Fatal(err)
	}
	err = c.Groups().ByGroupId(id).Members().ByDirectoryObjectId(all.Members[0]).Ref().Delete(ctx, nil)
	if code, _ := odata(err); code != "Request_ResourceNotFound" {
		t.Fatalf("removing a non-member: %v", err)
	}
	got, _ := tenant.Group(id)
	if got.Description != "Testing of Azure Security Groups" || len(got.Members) != 2 {
		t.Fatalf("after PATCH and removal: %+v", got)
	}

	filter := "mailNickname eq 'grouper-security-sdk'"
	found, err := c.Groups().Get(ctx, &graphgroups.GroupsRequestBuilderGetRequestConfiguration{
		QueryParameters: &graphgroups.GroupsRequestBuilderGetQueryParameters{Filter: &filter}})
	if err != nil || len(found.GetValue()) != 1 || deref(found.GetValue()[0].GetId()) != id {
		t.Fatalf("find by mailNickname: %v %v", found, err)
	}

	bad := models.NewGroup()
	bad.SetDisplayName(ptr(strings.Repeat("x", 257)))
	bad.SetMailNickname(ptr("x"))
	bad.SetMailEnabled(ptr(false))
	bad.SetSecurityEnabled(ptr(true))
	_, err = c.Groups().Post(ctx, bad, nil)
	if code, _ := odata(err); code != "Request_BadRequest" {
		t.Fatalf("a display name of 257 characters: %v", err)
	}

	if err := c.Groups().ByGroupId(id).Delete(ctx, nil); err != nil {
		t.Fatal(err)
	}
	_, err = c.Groups().ByGroupId(id).Get(ctx, nil)
	if code, _ := odata(err); code != "Request_ResourceNotFound" {
		t.Fatalf("a deleted group: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

// User writes as a user provisioner makes them, with Microsoft's SDK: the
// verified domains, the subscribed licenses with their seats, a user
// created (and a duplicate UPN refused), a license refused without a
// usage location and assigned with one, the user disabled and deleted.
func TestSDKUserWrites(t *testing.T) {
	c, tenant := client(t)
	ctx := context.Background()
	domains, err := c.Domains().Get(ctx, nil)
	if err != nil || len(domains.GetValue()) != 1 || deref(domains.GetValue()[0].GetId()) != "contoso.example" || !*domains.GetValue()[0].GetIsVerified() {
		t.Fatalf("domains: %v %v", domains, err)
	}
	skus, err := c.SubscribedSkus().Get(ctx, nil)
	if err != nil || len(skus.GetValue()) != 3 {
		t.Fatalf("subscribedSkus: %v", err)
	}
	var pro models.SubscribedSkuable
	for _, s := range skus.GetValue() {
		if deref(s.GetSkuPartNumber()) == "OFFICESUBSCRIPTION" {
			pro = s
		}
	}
	if pro == nil || *pro.GetPrepaidUnits().GetEnabled() < 1 || *pro.GetConsumedUnits() != 0 || len(pro.GetServicePlans()) != 2 {
		t.Fatalf("Office Professional: %+v", pro)
	}
	newUser := func(upn string) models.Userable {
		u := models.NewUser()
		u.SetAccountEnabled(ptr(true))
		u.SetDisplayName(ptr("Josh Ames"))
		u.SetMailNickname(ptr("josh.ames"))
		u.SetUserPrincipalName(ptr(upn))
		pp := models.NewPasswordProfile()
		pp.SetPassword(ptr("xWwvJ]6NMw+bWH-d"))
		pp.SetForceChangePasswordNextSignIn(ptr(true))
		u.SetPasswordProfile(pp)
		return u
	}
	made, err := c.Users().Post(ctx, newUser("josh.ames@contoso.example"), nil)
	if err != nil {
		t.Fatal(err)
	}
	id := deref(made.GetId())
	if _, err := c.Users().Post(ctx, newUser("josh.ames@contoso.example"), nil); !strings.Contains(second(odata(err)), "already exists") {
		t.Fatalf("a duplicate UPN: %v", err)
	}
	if _, err := c.Users().Post(ctx, newUser("josh@fabrikam.com"), nil); !strings.Contains(second(odata(err)), "verified domain") {
		t.Fatalf("a UPN outside the verified domains: %v", err)
	}
	lic := models.NewAssignedLicense()
	lic.SetSkuId(pro.GetSkuId())
	lic.SetDisabledPlans([]uuid.UUID{*pro.GetServicePlans()[1].GetServicePlanId()})
	body := graphusers.NewItemAssignLicensePostRequestBody()
	body.SetAddLicenses([]models.AssignedLicenseable{lic})
	body.SetRemoveLicenses([]uuid.UUID{})
	_, err = c.Users().ByUserId(id).AssignLicense().Post(ctx, body, nil)
	if code, msg := odata(err); code != "Request_BadRequest" || !strings.Contains(msg, "usage location") {
		t.Fatalf("a license without a usage location: %v", err)
	}
	loc := models.NewUser()
	loc.SetUsageLocation(ptr("US"))
	if _, err := c.Users().ByUserId(id).Patch(ctx, loc, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Users().ByUserId(id).AssignLicense().Post(ctx, body, nil); err != nil {
		t.Fatal(err)
	}
	if n := tenant.Consumed("OFFICESUBSCRIPTION"); n != 1 {
		t.Fatalf("seats used: %d", n)
	}
	off := models.NewUser()
	off.SetAccountEnabled(ptr(false))
	if _, err := c.Users().ByUserId(id).Patch(ctx, off, nil); err != nil {
		t.Fatal(err)
	}
	if u, _ := tenant.User(id); u.AccountEnabled || u.UsageLocation != "US" || len(u.Licenses) != 1 || len(u.Licenses[0].DisabledPlans) != 1 {
		t.Fatalf("after the writes: %+v", u)
	}
	if err := c.Users().ByUserId(id).Delete(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if !tenant.Deleted(id) {
		t.Fatal("the deleted user is not restorable")
	}
}

func second(_, msg string) string { return msg }

// Graph's upsert through the SDK's own request builder
// (GroupsWithUniqueName): created once with Prefer: create-if-missing,
// updated (no body) the second time, read back by its alternate key.
func TestSDKUpsertByUniqueName(t *testing.T) {
	c, tenant := client(t)
	ctx := context.Background()
	before := len(tenant.Groups())
	h := abstractions.NewRequestHeaders()
	h.Add("Prefer", "create-if-missing")
	cfg := &groupswithuniquename.GroupsWithUniqueNameRequestBuilderPatchRequestConfiguration{Headers: h}
	g := models.NewGroup()
	g.SetDisplayName(ptr("Upserted"))
	g.SetMailNickname(ptr("upserted"))
	g.SetMailEnabled(ptr(false))
	g.SetSecurityEnabled(ptr(true))
	made, err := c.GroupsWithUniqueName(ptr("usersync.sdk.1")).Patch(ctx, g, cfg)
	if err != nil || made == nil || deref(made.GetUniqueName()) != "usersync.sdk.1" {
		t.Fatalf("upsert create: %v %v", made, err)
	}
	g.SetDisplayName(ptr("Upserted again"))
	if again, err := c.GroupsWithUniqueName(ptr("usersync.sdk.1")).Patch(ctx, g, cfg); err != nil || again != nil {
		t.Fatalf("upsert of the same key: %v %v", again, err)
	}
	if n := len(tenant.Groups()); n != before+1 {
		t.Fatalf("%d groups, want %d", n, before+1)
	}
	got, err := c.GroupsWithUniqueName(ptr("usersync.sdk.1")).Get(ctx, nil)
	if err != nil || deref(got.GetId()) != deref(made.GetId()) || deref(got.GetDisplayName()) != "Upserted again" {
		t.Fatalf("get by key: %v %v", got, err)
	}
	_, err = c.GroupsWithUniqueName(ptr("nobody")).Patch(ctx, g, nil)
	if code, _ := odata(err); code != "Request_ResourceNotFound" {
		t.Fatalf("an update of a missing key without Prefer: %v", err)
	}
}
