namespace ChatServices.Tests.Shared;

/// <summary>Waiting for a condition in a test: it holds before the deadline, or the wait fails saying what did not happen.</summary>
public static class Wait
{
    public static Task UntilAsync(Func<bool> condition, TimeSpan timeout, string what) =>
        UntilAsync(() => Task.FromResult(condition()), timeout, what);

    public static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow >= deadline) throw new TimeoutException($"{what}: not within {timeout.TotalSeconds:0.#} s");
            await Task.Delay(20);
        }
    }
}
