using ChatServices.Protos.Chat.V1;
using ChatServices.ServiceDefaults.Identity;
using Grpc.Core;
using Grpc.Health.V1;

namespace ChatServices.InferenceService.Tests.Api;

/// <summary>
/// Who may call the GPU tier: roles <c>service</c> (DialogueService) and <c>admin</c>; a tenant's <c>user</c> key only
/// where <c>Inference:AdmitUsers</c> says so. Probes need no credential.
/// </summary>
public sealed class InferenceAuthorizationTests(InferenceServiceFixture fixture) : IClassFixture<InferenceServiceFixture>
{
    [Fact]
    public async Task A_call_without_credential_is_unauthenticated()
    {
        var e = await Assert.ThrowsAsync<RpcException>(() => fixture.ClientWith(null).GetModelInfoAsync(new GetModelInfoRequest()).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, e.StatusCode);
        Assert.Contains("no credential", e.Status.Detail);
    }

    [Theory]
    [InlineData("csk_not-a-key-anyone-was-given-00000000000000000")]
    [InlineData("eyJhbGciOiJub25lIn0.eyJzdWIiOiJtYWxsb3J5In0.")] // a JWT, while this service accepts none
    [InlineData("opaque-token")]
    public async Task An_unknown_credential_is_unauthenticated(string credential)
    {
        var e = await Assert.ThrowsAsync<RpcException>(() => fixture.ClientWith(credential).GetModelInfoAsync(new GetModelInfoRequest()).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, e.StatusCode);
        Assert.Contains("not accepted", e.Status.Detail);
    }

    [Fact]
    public async Task A_tenant_user_key_is_permission_denied_for_generate_and_model_info()
    {
        var tenant = fixture.ClientWith(InferenceServiceFixture.UserKey);
        var info = await Assert.ThrowsAsync<RpcException>(() => tenant.GetModelInfoAsync(new GetModelInfoRequest()).ResponseAsync);
        Assert.Equal(StatusCode.PermissionDenied, info.StatusCode);

        var request = new GenerateRequest { MaxNewTokens = 2 };
        request.PromptTokenIds.AddRange(TestModel.Prompt(1, 4));
        using var call = tenant.Generate(request);
        var generate = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext());
        Assert.Equal(StatusCode.PermissionDenied, generate.StatusCode);
    }

    [Theory]
    [InlineData(InferenceServiceFixture.ServiceKey)]
    [InlineData(InferenceServiceFixture.AdminKey)]
    public async Task Service_and_admin_keys_are_admitted(string key)
    {
        var info = await fixture.ClientWith(key).GetModelInfoAsync(new GetModelInfoRequest());
        Assert.Equal(512, (int)info.VocabSize);
    }

    [Fact]
    public async Task Health_answers_without_credential()
    {
        var health = new Health.HealthClient(fixture.Channel);
        var reply = await health.CheckAsync(new HealthCheckRequest());
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, reply.Status);
    }
}

/// <summary>The service configured to admit tenants' <c>user</c> keys as well.</summary>
public sealed class UserAdmittingInferenceServiceFixture : InferenceServiceFixture
{
    protected override IReadOnlyDictionary<string, string?> ExtraSettings => new Dictionary<string, string?> { ["Inference:AdmitUsers"] = "true" };
}

public sealed class InferenceAdmitUsersTests(UserAdmittingInferenceServiceFixture fixture) : IClassFixture<UserAdmittingInferenceServiceFixture>
{
    [Fact]
    public async Task With_AdmitUsers_a_user_key_may_generate()
    {
        var request = new GenerateRequest { MaxNewTokens = 2, IgnoreEos = true, Sampling = new SamplingParams { Temperature = 0 } };
        request.PromptTokenIds.AddRange(TestModel.Prompt(1, 4));
        using var call = fixture.ClientWith(InferenceServiceFixture.UserKey).Generate(request);
        GenerateResult? result = null;
        await foreach (var m in call.ResponseStream.ReadAllAsync())
            if (m.KindCase == GenerateResponse.KindOneofCase.Result) result = m.Result;
        Assert.NotNull(result);
        Assert.Equal(2, (int)result.Usage.CompletionTokens);

        var anonymous = await Assert.ThrowsAsync<RpcException>(() => fixture.ClientWith(null).GetModelInfoAsync(new GetModelInfoRequest()).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, anonymous.StatusCode);
    }
}

/// <summary>The service as <c>./run.sh</c> runs it: unauthenticated loopback callers are served.</summary>
public sealed class LoopbackDefaultInferenceServiceFixture : InferenceServiceFixture
{
    protected override IReadOnlyDictionary<string, string?> ExtraSettings => new Dictionary<string, string?> { ["Identity:AllowAnonymousOnLoopback"] = "true" };
}

public sealed class InferenceLoopbackDefaultTests(LoopbackDefaultInferenceServiceFixture fixture) : IClassFixture<LoopbackDefaultInferenceServiceFixture>
{
    [Fact]
    public async Task On_the_embedded_default_a_loopback_caller_needs_no_credential_but_a_bad_one_is_still_refused()
    {
        var info = await fixture.ClientWith(null).GetModelInfoAsync(new GetModelInfoRequest());
        Assert.Equal(512, (int)info.VocabSize);

        var e = await Assert.ThrowsAsync<RpcException>(() => fixture.ClientWith("csk_wrong").GetModelInfoAsync(new GetModelInfoRequest()).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, e.StatusCode);
    }
}
