using Microsoft.AspNetCore.StaticFiles;

namespace ChatServices.Gateway.WebPage;

/// <summary>
/// Headers on the web page's files (wwwroot). The page shows model output, which is untrusted: besides sanitising
/// it, the page forbids itself any script but its own files, any connection but to this origin, and being framed.
/// </summary>
public static class WebPageHeaders
{
    /// <summary>
    /// No inline script, no eval, no plugins, no foreign origin for anything; styles from the page's own files
    /// (a style attribute is inert); images only from here or inline data (the favicon).
    /// </summary>
    public const string ContentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; " +
        "connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'";

    public static StaticFileOptions CreateStaticFileOptions() => new()
    {
        OnPrepareResponse = context =>
        {
            var headers = context.Context.Response.Headers;
            headers.ContentSecurityPolicy = ContentSecurityPolicy;
            headers.XContentTypeOptions = "nosniff";
            headers["Referrer-Policy"] = "no-referrer";
        },
    };
}
