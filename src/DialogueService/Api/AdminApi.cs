using ChatServices.DialogueService.Conversations;
using ChatServices.DialogueService.Identity;
using ChatServices.Protos.Chat.V1;
using ChatServices.ServiceDefaults.Identity;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.AspNetCore.Authorization;

namespace ChatServices.DialogueService.Api;

/// <summary>
/// chat.v1.Admin: API keys in the database (<see cref="ApiKeyStore"/>) for admins, and key validation for the
/// Gateway. A new key's secret is in the response only; it is never logged.
/// </summary>
public sealed class AdminApi(ApiKeyStore keys, KeyLimits limits, ILogger<AdminApi> logger) : Admin.AdminBase
{
    private const int MaxNameLength = 256;

    [Authorize(Policy = ServiceIdentity.AdminPolicy)]
    public override async Task<CreateKeyResponse> CreateKey(CreateKeyRequest request, ServerCallContext context)
    {
        var role = request.Role.Length == 0 ? Roles.User : request.Role;
        if (!Roles.IsKnown(role)) throw ApiErrors.InvalidArgument("role", $"role is '{request.Role}'; expected user, service or admin.");
        if (string.IsNullOrWhiteSpace(request.OwnerId)) throw ApiErrors.InvalidArgument("owner_id", "owner_id is required.");
        if (request.OwnerId.Length > ConversationLimits.MaxOwnerIdLength)
            throw ApiErrors.InvalidArgument("owner_id", $"owner_id is at most {ConversationLimits.MaxOwnerIdLength} characters.");
        if (request.Name.Length > MaxNameLength) throw ApiErrors.InvalidArgument("name", $"name is at most {MaxNameLength} characters.");
        if (request.RequestsPerMinute < 0) throw ApiErrors.InvalidArgument("requests_per_minute", "requests_per_minute must be >= 0.");
        if (request.TokensPerMinute < 0) throw ApiErrors.InvalidArgument("tokens_per_minute", "tokens_per_minute must be >= 0.");
        DateTimeOffset? expires = request.ExpiresAt?.ToDateTimeOffset();
        if (expires <= DateTimeOffset.UtcNow) throw ApiErrors.InvalidArgument("expires_at", "expires_at must lie in the future.");

        var (key, secret) = await keys.CreateAsync(
            new NewApiKey(request.OwnerId, role, request.Name, request.RequestsPerMinute, request.TokensPerMinute, expires), context.CancellationToken);
        logger.LogInformation("API key {KeyId} created for owner {Owner} with role {Role} by {Admin}", key.Id, key.OwnerId, key.Role, Caller(context));
        return new CreateKeyResponse { Key = ToProto(key), Secret = secret };
    }

    [Authorize(Policy = ServiceIdentity.AdminPolicy)]
    public override async Task<ListKeysResponse> ListKeys(ListKeysRequest request, ServerCallContext context)
    {
        var list = await keys.ListAsync(request.OwnerId.Length == 0 ? null : request.OwnerId, request.IncludeInactive, context.CancellationToken);
        var response = new ListKeysResponse();
        response.Keys.AddRange(list.Select(ToProto));
        return response;
    }

    [Authorize(Policy = ServiceIdentity.AdminPolicy)]
    public override async Task<ApiKey> RevokeKey(RevokeKeyRequest request, ServerCallContext context)
    {
        var key = await keys.RevokeAsync(ParseKeyId(request.KeyId), context.CancellationToken) ?? throw NoSuchKey(request.KeyId);
        logger.LogInformation("API key {KeyId} revoked by {Admin}", key.Id, Caller(context));
        return ToProto(key);
    }

    [Authorize(Policy = ServiceIdentity.AdminPolicy)]
    public override async Task<CreateKeyResponse> RotateKey(RotateKeyRequest request, ServerCallContext context)
    {
        var (key, secret) = await keys.RotateAsync(ParseKeyId(request.KeyId), context.CancellationToken) ?? throw NoSuchKey(request.KeyId);
        logger.LogInformation("API key {OldKeyId} rotated to {KeyId} by {Admin}", request.KeyId, key.Id, Caller(context));
        return new CreateKeyResponse { Key = ToProto(key), Secret = secret };
    }

    [Authorize(Policy = ServiceIdentity.KeyValidationPolicy)]
    public override async Task<ValidateKeyResponse> ValidateKey(ValidateKeyRequest request, ServerCallContext context)
    {
        if (request.KeySha256.Length != 64 || !request.KeySha256.All(char.IsAsciiHexDigitLower))
            throw ApiErrors.InvalidArgument("key_sha256", "key_sha256 must be the 64 lowercase hex digits of the key's SHA-256.");
        var key = await keys.FindActiveAsync(request.KeySha256, context.CancellationToken);
        return key is null ? new ValidateKeyResponse { Valid = false } : new ValidateKeyResponse { Valid = true, Key = ToProto(key) };
    }

    [Authorize(Policy = ServiceIdentity.KeyValidationPolicy)]
    public override async Task<GetUsageResponse> GetUsage(GetUsageRequest request, ServerCallContext context)
    {
        var to = request.ToDay.Length == 0 ? DateOnly.FromDateTime(DateTime.UtcNow) : ParseDay(request.ToDay, "to_day");
        var from = request.FromDay.Length == 0 ? to.AddDays(-30) : ParseDay(request.FromDay, "from_day");
        var usage = await limits.ReadUsageAsync(request.KeyId.Length == 0 ? null : request.KeyId, request.OwnerId.Length == 0 ? null : request.OwnerId,
            from.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture), to.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture),
            context.CancellationToken);
        var response = new GetUsageResponse();
        response.Usage.AddRange(usage.Select(u => new Protos.Chat.V1.KeyUsage
        {
            KeyId = u.KeyId, OwnerId = u.OwnerId, Day = u.Day, Requests = u.Requests, PromptTokens = u.PromptTokens, CompletionTokens = u.CompletionTokens,
        }));
        return response;
    }

    private static DateOnly ParseDay(string day, string field) =>
        DateOnly.TryParseExact(day, "yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.None, out var parsed)
            ? parsed
            : throw ApiErrors.InvalidArgument(field, $"{field} is '{day}'; expected YYYY-MM-DD.");

    private static string? Caller(ServerCallContext context) => context.GetHttpContext().User.Identity?.Name;

    private static Guid ParseKeyId(string id) => Guid.TryParse(id, out var guid) ? guid : throw NoSuchKey(id);

    private static RpcException NoSuchKey(string id) => ApiErrors.NotFound($"API key '{id}' was not found.");

    internal static ApiKey ToProto(StoredApiKey key) => new()
    {
        Id = key.Id.ToString(),
        OwnerId = key.OwnerId,
        Role = key.Role,
        Name = key.Name,
        RequestsPerMinute = key.RequestsPerMinute,
        TokensPerMinute = key.TokensPerMinute,
        CreatedAt = Timestamp.FromDateTimeOffset(key.CreatedAt),
        LastUsedAt = key.LastUsedAt is { } used ? Timestamp.FromDateTimeOffset(used) : null,
        ExpiresAt = key.ExpiresAt is { } expires ? Timestamp.FromDateTimeOffset(expires) : null,
        RevokedAt = key.RevokedAt is { } revoked ? Timestamp.FromDateTimeOffset(revoked) : null,
    };
}
