using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using ChatServices.Protos.Chat.V1;
using ChatServices.ServiceDefaults;
using Grpc.Core;

namespace ChatServices.InferenceService.Tests.Api;

/// <summary>
/// A certificate authority, and the server and client certificates it signs, as PEM files (as Kubernetes mounts a
/// TLS Secret), made for the test run.
/// </summary>
public sealed class TestCertificates : IDisposable
{
    public TestCertificates()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("chatservices-tls-").FullName;
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=ChatServices test CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign, true));
        using var ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        CaPath = Write("ca.crt", ca.ExportCertificatePem());
        (ServerCertificatePath, ServerKeyPath) = Issue("server", ca, caKey, server: true);
        (ClientCertificatePath, ClientKeyPath) = Issue("client", ca, caKey, server: false);

        using var strangerKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var stranger = new CertificateRequest("CN=Someone else's CA", strangerKey, HashAlgorithmName.SHA256)
            .CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        (ForeignClientCertificatePath, ForeignClientKeyPath) = Issue("foreign-client", stranger, strangerKey, server: false);
    }

    public string Directory { get; }
    public string CaPath { get; }
    public string ServerCertificatePath { get; }
    public string ServerKeyPath { get; }
    public string ClientCertificatePath { get; }
    public string ClientKeyPath { get; }
    public string ForeignClientCertificatePath { get; }
    public string ForeignClientKeyPath { get; }

    private (string Certificate, string Key) Issue(string name, X509Certificate2 issuer, ECDsa issuerKey, bool server)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [server ? new Oid("1.3.6.1.5.5.7.3.1") : new Oid("1.3.6.1.5.5.7.3.2")], false));
        if (server)
        {
            var names = new SubjectAlternativeNameBuilder();
            names.AddIpAddress(IPAddress.Loopback);
            names.AddDnsName("localhost");
            request.CertificateExtensions.Add(names.Build());
        }
        var serial = RandomNumberGenerator.GetBytes(12);
        using var signed = request.Create(issuer.SubjectName, X509SignatureGenerator.CreateForECDsa(issuerKey),
            DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1), serial);
        return (Write(name + ".crt", signed.ExportCertificatePem()), Write(name + ".key", key.ExportPkcs8PrivateKeyPem()));
    }

    private string Write(string name, string pem)
    {
        var path = Path.Combine(Directory, name);
        File.WriteAllText(path, pem);
        return path;
    }

    public void Dispose() => System.IO.Directory.Delete(Directory, recursive: true);
}

/// <summary>InferenceService serving gRPC over TLS that requires a client certificate from the tiers' authority.</summary>
public sealed class MutualTlsInferenceServiceFixture : InferenceServiceFixture
{
    public TestCertificates Certificates { get; } = new();

    protected override IReadOnlyDictionary<string, string?> ExtraSettings => new Dictionary<string, string?>
    {
        ["Kestrel:Endpoints:Grpc:Url"] = "https://127.0.0.1:0",
        ["Kestrel:Endpoints:Grpc:Certificate:Path"] = Certificates.ServerCertificatePath,
        ["Kestrel:Endpoints:Grpc:Certificate:KeyPath"] = Certificates.ServerKeyPath,
        ["Kestrel:Endpoints:Grpc:ClientCertificateMode"] = "RequireCertificate",
        ["Tls:CaPath"] = Certificates.CaPath,
    };

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        Certificates.Dispose();
    }
}

public sealed class MutualTlsTests(MutualTlsInferenceServiceFixture fixture) : IClassFixture<MutualTlsInferenceServiceFixture>
{
    private TestCertificates Certificates => fixture.Certificates;

    private async Task<ModelInfo> ModelInfoAsync(TlsOptions tls)
    {
        Assert.Equal("https", fixture.Address.Scheme);
        using var channel = GrpcChannels.ForAddress(fixture.Address, tls: tls);
        var client = new Inference.InferenceClient(channel.WithCredential(InferenceServiceFixture.ServiceKey));
        return await client.GetModelInfoAsync(new GetModelInfoRequest(), deadline: DateTime.UtcNow.AddSeconds(20));
    }

    [Fact]
    public async Task A_tier_with_a_certificate_from_the_authority_is_served()
    {
        var info = await ModelInfoAsync(new TlsOptions
        {
            CaPath = Certificates.CaPath, ClientCertificatePath = Certificates.ClientCertificatePath, ClientKeyPath = Certificates.ClientKeyPath,
        });
        Assert.Equal(512, (int)info.VocabSize);
    }

    [Fact]
    public async Task A_caller_without_a_client_certificate_is_refused()
    {
        var e = await Assert.ThrowsAsync<RpcException>(() => ModelInfoAsync(new TlsOptions { CaPath = Certificates.CaPath }));
        AssertRefusedByTheServer(e);
    }

    [Fact]
    public async Task A_client_certificate_from_another_authority_is_refused()
    {
        var e = await Assert.ThrowsAsync<RpcException>(() => ModelInfoAsync(new TlsOptions
        {
            CaPath = Certificates.CaPath, ClientCertificatePath = Certificates.ForeignClientCertificatePath, ClientKeyPath = Certificates.ForeignClientKeyPath,
        }));
        AssertRefusedByTheServer(e);
    }

    /// <summary>
    /// Under TLS 1.3 the server checks the client's certificate after the client has finished its side of the
    /// handshake, so the refusal reaches the client either while it sends the request (the connection is gone:
    /// UNAVAILABLE) or while it reads the response (the stream broke: INTERNAL), whichever comes first. Both are the
    /// server closing the connection; neither carries a response.
    /// </summary>
    private static void AssertRefusedByTheServer(RpcException e) =>
        Assert.True(e.StatusCode is StatusCode.Unavailable or StatusCode.Internal, $"refused at the TLS layer, got {e.Status}");

    [Fact]
    public async Task A_caller_that_does_not_trust_the_authority_does_not_talk_to_the_server()
    {
        var e = await Assert.ThrowsAsync<RpcException>(() => ModelInfoAsync(new TlsOptions
        {
            ClientCertificatePath = Certificates.ClientCertificatePath, ClientKeyPath = Certificates.ClientKeyPath,
        }));
        // grpc-dotnet reports a TLS handshake the client itself aborted as INTERNAL.
        Assert.Equal(StatusCode.Internal, e.StatusCode);
        Assert.Contains("SSL connection could not be established", e.Status.Detail);
    }
}
