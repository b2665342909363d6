using ChatServices.Gateway.Auth;
using ChatServices.Gateway.Limits;
using ChatServices.Gateway.OpenAi;

namespace ChatServices.Gateway.Tests.Limits;

public sealed class TokenBudgetTests
{
    /// <summary>A clock the test moves by hand.</summary>
    private sealed class ManualClock : TimeProvider
    {
        private long _ticks;
        public override long TimestampFrequency => TimeSpan.TicksPerSecond;
        public override long GetTimestamp() => _ticks;
        public void Advance(TimeSpan by) => _ticks += by.Ticks;
    }

    private static readonly Caller Caller = new("owner", "key:test", 0, TokensPerMinute: 600, Anonymous: false);

    [Fact]
    public void A_charge_beyond_what_is_left_is_refused_with_the_wait_until_it_fits()
    {
        var clock = new ManualClock();
        var budgets = new TokenBudgets(clock);
        using (var first = budgets.Charge(Caller, 500)) first.Settle(500);

        var e = Assert.Throws<ApiException>(() => budgets.Charge(Caller, 200));
        Assert.Equal(429, e.StatusCode);
        Assert.Equal("tokens", e.Type);
        // 100 left, 100 more needed at 10 a second: 10 seconds.
        Assert.Equal(10, e.RetryAfterSeconds);

        clock.Advance(TimeSpan.FromSeconds(10));
        using var second = budgets.Charge(Caller, 200);
        second.Settle(200);
    }

    [Fact]
    public void Unused_tokens_are_refunded_and_overruns_are_debited()
    {
        var clock = new ManualClock();
        var budgets = new TokenBudgets(clock);
        using (var small = budgets.Charge(Caller, 500)) small.Settle(50);   // 450 back: 550 left
        using (var over = budgets.Charge(Caller, 500)) over.Settle(600);    // 100 more: -50 left
        Assert.Throws<ApiException>(() => budgets.Charge(Caller, 1));
        clock.Advance(TimeSpan.FromSeconds(6));                             // +60: 10 left
        using var fits = budgets.Charge(Caller, 10);
        fits.Settle(10);
    }

    [Fact]
    public void A_request_larger_than_the_whole_allowance_is_charged_the_allowance()
    {
        var budgets = new TokenBudgets(new ManualClock());
        Assert.Null(Record.Exception(() =>
        {
            using var huge = budgets.Charge(Caller, 100_000);
            huge.Settle(600);
        }));
        Assert.Throws<ApiException>(() => budgets.Charge(Caller, 1));
    }

    [Fact]
    public void Refills_never_exceed_one_minute_of_allowance()
    {
        var clock = new ManualClock();
        var budgets = new TokenBudgets(clock);
        clock.Advance(TimeSpan.FromHours(1));
        using (var all = budgets.Charge(Caller, 600)) all.Settle(600);
        Assert.Throws<ApiException>(() => budgets.Charge(Caller, 1));
    }

    [Fact]
    public void An_unlimited_caller_is_never_charged()
    {
        var budgets = new TokenBudgets(new ManualClock());
        Assert.Null(Record.Exception(() =>
        {
            for (var i = 0; i < 10; i++)
            {
                using var charge = budgets.Charge(Caller with { TokensPerMinute = 0 }, int.MaxValue);
                charge.Settle(int.MaxValue);
            }
        }));
    }
}
