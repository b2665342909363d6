using System.Collections.Concurrent;
using System.Diagnostics;
using ChatServices.Gateway.Auth;
using ChatServices.Gateway.OpenAi;

namespace ChatServices.Gateway.Limits;

/// <summary>
/// A caller's tokens-per-minute allowance as a token bucket: it holds up to one minute's worth and refills
/// continuously. A generation is charged up front with what it may cost (prompt estimate + n × max tokens) and
/// refunded what it did not use once its usage is known, so a burst of large requests is refused before it
/// reaches the model rather than after. ASP.NET Core's replenishing limiters cannot refund, hence this type.
/// </summary>
public sealed class TokenBudget(int tokensPerMinute, TimeProvider time)
{
    private readonly object _gate = new();
    private readonly double _refillPerTick = tokensPerMinute / (double)TimeSpan.FromMinutes(1).Ticks;
    private double _available = tokensPerMinute;
    private long _lastRefill = time.GetTimestamp();

    public int Capacity => tokensPerMinute;

    /// <summary>Takes <paramref name="tokens"/> (at most the capacity) or says how long until they are there.</summary>
    public bool TryTake(int tokens, out TimeSpan retryAfter)
    {
        lock (_gate)
        {
            Refill();
            if (_available >= tokens)
            {
                _available -= tokens;
                retryAfter = TimeSpan.Zero;
                return true;
            }
            retryAfter = TimeSpan.FromTicks((long)Math.Ceiling((tokens - _available) / _refillPerTick));
            return false;
        }
    }

    /// <summary>Returns tokens charged but not used (never above the capacity).</summary>
    public void Refund(int tokens)
    {
        if (tokens <= 0) return;
        lock (_gate)
        {
            Refill();
            _available = Math.Min(tokensPerMinute, _available + tokens);
        }
    }

    /// <summary>Charges tokens beyond the up-front estimate (may go negative: the next requests wait).</summary>
    public void Debit(int tokens)
    {
        if (tokens <= 0) return;
        lock (_gate)
        {
            Refill();
            _available -= tokens;
        }
    }

    private void Refill()
    {
        var now = time.GetTimestamp();
        var elapsed = time.GetElapsedTime(_lastRefill, now);
        _lastRefill = now;
        _available = Math.Min(tokensPerMinute, _available + elapsed.Ticks * _refillPerTick);
    }
}

/// <summary>Every caller's <see cref="TokenBudget"/>, by partition (one per configured key, one for anonymous).</summary>
public sealed class TokenBudgets(TimeProvider time)
{
    private readonly ConcurrentDictionary<string, TokenBudget> _budgets = new();

    /// <summary>
    /// Charges a generation that may cost <paramref name="maxTokens"/> tokens, or refuses it with 429 and the
    /// wait. A request larger than the whole per-minute allowance is charged the whole allowance (it can never
    /// fit otherwise). Dispose the charge when the generation ends; <see cref="TokenCharge.Settle"/> first
    /// when the actual usage is known.
    /// </summary>
    public TokenCharge Charge(Caller caller, int maxTokens)
    {
        if (caller.TokensPerMinute <= 0) return new TokenCharge(null, 0);
        var budget = _budgets.GetOrAdd(caller.PartitionKey, static (_, state) => new TokenBudget(state.Item1, state.Item2), (caller.TokensPerMinute, time));
        var charge = Math.Min(maxTokens, budget.Capacity);
        if (!budget.TryTake(charge, out var retryAfter))
        {
            throw ApiException.RateLimited("tokens",
                $"Rate limit reached for tokens per minute: limit {budget.Capacity}, requested {charge}. Try again in {retryAfter.TotalSeconds:0.#}s.",
                Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)));
        }
        return new TokenCharge(budget, charge);
    }
}

/// <summary>An up-front charge against a <see cref="TokenBudget"/>; disposing it settles the difference.</summary>
public sealed class TokenCharge(TokenBudget? budget, int charged) : IDisposable
{
    private int _used = -1;

    /// <summary>The tokens the generation actually used (prompt + completion).</summary>
    public void Settle(int usedTokens) => _used = usedTokens;

    public void Dispose()
    {
        if (budget is null || _used < 0) return;
        // Unsettled (the generation failed before reporting usage): the charge stands, erring on the safe side.
        if (_used < charged) budget.Refund(charged - _used);
        else budget.Debit(_used - charged);
        _used = -1;
    }
}
