using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace ChatServices.ServiceDefaults;

/// <summary>
/// TLS between the tiers (configuration section <c>Tls</c>), beside what Kestrel's own configuration does for the
/// endpoints this service serves (<c>Kestrel:Endpoints:NAME:Url=https://…</c>, <c>…:Certificate:Path</c> and
/// <c>…:Certificate:KeyPath</c>, PEM files as Kubernetes mounts a <c>kubernetes.io/tls</c> Secret, and
/// <c>…:ClientCertificateMode=RequireCertificate</c> for mutual TLS).
/// </summary>
public sealed class TlsOptions
{
    public const string SectionName = "Tls";

    /// <summary>
    /// PEM file of the certificate authority (or authorities) that signs the tiers' certificates. When set, it is the
    /// only trust for the servers this service calls and for the client certificates it accepts (mutual TLS);
    /// unset, the system's trust store decides.
    /// </summary>
    public string? CaPath { get; set; }

    /// <summary>PEM certificate and key this service presents when it calls another tier (mutual TLS).</summary>
    public string? ClientCertificatePath { get; set; }

    public string? ClientKeyPath { get; set; }

    public static TlsOptions From(IConfiguration configuration) => configuration.GetSection(SectionName).Get<TlsOptions>() ?? new TlsOptions();

    /// <summary>Client certificates Kestrel accepts are checked against <see cref="CaPath"/> when it is set.</summary>
    internal static void ConfigureServer(IServiceCollection services, TlsOptions tls)
    {
        if (string.IsNullOrWhiteSpace(tls.CaPath)) return;
        var authorities = LoadAuthorities(tls.CaPath);
        services.Configure<KestrelServerOptions>(kestrel => kestrel.ConfigureHttpsDefaults(https =>
            https.ClientCertificateValidation = (certificate, _, _) => ChainsTo(certificate, authorities)));
    }

    /// <summary>The TLS settings of a channel to another tier.</summary>
    internal void ConfigureClient(SocketsHttpHandler handler)
    {
        if (!string.IsNullOrWhiteSpace(CaPath))
        {
            var authorities = LoadAuthorities(CaPath);
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
                certificate is not null
                && (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) == SslPolicyErrors.None // the name must match
                && ChainsTo(new X509Certificate2(certificate), authorities);
        }
        if (!string.IsNullOrWhiteSpace(ClientCertificatePath))
        {
            var certificate = X509Certificate2.CreateFromPemFile(ClientCertificatePath, ClientKeyPath);
            // An ephemeral key cannot be used by SslStream on every platform: round-trip through PKCS#12.
            handler.SslOptions.ClientCertificates = [X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pkcs12), null)];
        }
    }

    private static X509Certificate2Collection LoadAuthorities(string path)
    {
        var authorities = new X509Certificate2Collection();
        authorities.ImportFromPemFile(path);
        return authorities.Count > 0 ? authorities : throw new InvalidOperationException($"{SectionName}:CaPath '{path}' holds no certificate.");
    }

    private static bool ChainsTo(X509Certificate2 certificate, X509Certificate2Collection authorities)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(authorities);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(certificate);
    }
}
