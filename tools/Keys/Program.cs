using System.CommandLine;
using System.Globalization;
using ChatServices.Protos.Chat.V1;
using ChatServices.ServiceDefaults;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;

// API keys over DialogueService's chat.v1.Admin. The admin credential comes from CHAT_ADMIN_KEY (an admin API key
// or JWT); without it, the call carries none (the embedded default serves loopback callers as an admin).
var address = new Option<string>("--address", "-a")
{
    Description = "DialogueService's gRPC address.",
    Recursive = true,
    DefaultValueFactory = _ => Environment.GetEnvironmentVariable("CHAT_DIALOGUE_ADDRESS") ?? "http://127.0.0.1:50051",
};
var owner = new Option<string>("--owner") { Description = "The owner the key authenticates.", Required = true };
var role = new Option<string>("--role") { Description = "user (default), service or admin.", DefaultValueFactory = _ => "user" };
var name = new Option<string>("--name") { Description = "A label.", DefaultValueFactory = _ => "" };
var rpm = new Option<int>("--requests-per-minute") { Description = "Per-key request limit (0: the Gateway's default)." };
var tpm = new Option<int>("--tokens-per-minute") { Description = "Per-key token limit (0: the Gateway's default)." };
var expires = new Option<DateTimeOffset?>("--expires") { Description = "Expiry (ISO 8601, e.g. 2027-01-01T00:00:00Z); default: never." };
var ownerFilter = new Option<string?>("--owner") { Description = "Only this owner's keys." };
var all = new Option<bool>("--all") { Description = "Include revoked and expired keys." };
var keyId = new Argument<string>("key-id") { Description = "The key's id (from create or list)." };

var create = new Command("create", "Creates a key and prints it once.") { owner, role, name, rpm, tpm, expires };
create.SetAction(async (parse, ct) =>
{
    var request = new CreateKeyRequest
    {
        OwnerId = parse.GetValue(owner)!, Role = parse.GetValue(role)!, Name = parse.GetValue(name)!,
        RequestsPerMinute = parse.GetValue(rpm), TokensPerMinute = parse.GetValue(tpm),
        ExpiresAt = parse.GetValue(expires) is { } at ? Timestamp.FromDateTimeOffset(at) : null,
    };
    return await Run(parse.GetValue(address)!, async admin => PrintNew(await admin.CreateKeyAsync(request, cancellationToken: ct)));
});

var list = new Command("list", "Lists keys (never their secrets).") { ownerFilter, all };
list.SetAction(async (parse, ct) => await Run(parse.GetValue(address)!, async admin =>
{
    var response = await admin.ListKeysAsync(new ListKeysRequest { OwnerId = parse.GetValue(ownerFilter) ?? "", IncludeInactive = parse.GetValue(all) }, cancellationToken: ct);
    Console.WriteLine($"{"id",-36}  {"owner",-20}  {"role",-7}  {"created",-20}  {"last used",-20}  {"expires",-20}  {"revoked",-20}  name");
    foreach (var k in response.Keys)
        Console.WriteLine($"{k.Id,-36}  {k.OwnerId,-20}  {k.Role,-7}  {Time(k.CreatedAt),-20}  {Time(k.LastUsedAt),-20}  {Time(k.ExpiresAt),-20}  {Time(k.RevokedAt),-20}  {k.Name}");
}));

var revoke = new Command("revoke", "Revokes a key at once.") { keyId };
revoke.SetAction(async (parse, ct) => await Run(parse.GetValue(address)!, async admin =>
{
    var key = await admin.RevokeKeyAsync(new RevokeKeyRequest { KeyId = parse.GetValue(keyId)! }, cancellationToken: ct);
    Console.WriteLine($"revoked {key.Id} (owner {key.OwnerId}) at {Time(key.RevokedAt)}");
}));

var rotate = new Command("rotate", "Replaces a key by a new one (printed once) and revokes the old one.") { keyId };
rotate.SetAction(async (parse, ct) => await Run(parse.GetValue(address)!, async admin =>
    PrintNew(await admin.RotateKeyAsync(new RotateKeyRequest { KeyId = parse.GetValue(keyId)! }, cancellationToken: ct))));

var root = new RootCommand("API keys of a ChatServices deployment (chat.v1.Admin on DialogueService). Credential: CHAT_ADMIN_KEY.")
{
    create, list, revoke, rotate,
};
root.Options.Add(address);
return await root.Parse(args).InvokeAsync();

static async Task<int> Run(string address, Func<Admin.AdminClient, Task> work)
{
    using var channel = GrpcChannels.ForAddress(address);
    try
    {
        await work(new Admin.AdminClient(channel.WithCredential(Environment.GetEnvironmentVariable("CHAT_ADMIN_KEY"))));
        return 0;
    }
    catch (RpcException e)
    {
        Console.Error.WriteLine($"keys: {e.StatusCode}: {e.Status.Detail}");
        return 1;
    }
}

static void PrintNew(CreateKeyResponse created)
{
    Console.WriteLine($"id:     {created.Key.Id}");
    Console.WriteLine($"owner:  {created.Key.OwnerId} ({created.Key.Role})");
    Console.WriteLine($"key:    {created.Secret}");
    Console.WriteLine("The key is shown only now: DialogueService keeps its SHA-256, not the key.");
}

static string Time(Timestamp? t) => t is null ? "-" : t.ToDateTimeOffset().ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);
