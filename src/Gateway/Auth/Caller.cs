namespace ChatServices.Gateway.Auth;

/// <summary>
/// Who is calling, once authenticated: the owner id passed to DialogueService, the key's partition for rate
/// limiting (never the key or its full hash; passed on to DialogueService, whose limits hold across replicas),
/// its limits (0: unlimited) and its role (<c>user</c> unless a database key says otherwise).
/// </summary>
public sealed record Caller(string OwnerId, string PartitionKey, int RequestsPerMinute, int TokensPerMinute, bool Anonymous, string Role = "user");

public static class CallerHttpContextExtensions
{
    private static readonly object Key = typeof(Caller);

    /// <summary>The authenticated caller. Only endpoints that require authorization may ask.</summary>
    public static Caller GetCaller(this HttpContext context) =>
        context.Items[Key] as Caller ?? throw new InvalidOperationException("The request has not been authenticated.");

    public static Caller? FindCaller(this HttpContext context) => context.Items[Key] as Caller;

    internal static void SetCaller(this HttpContext context, Caller caller) => context.Items[Key] = caller;
}
