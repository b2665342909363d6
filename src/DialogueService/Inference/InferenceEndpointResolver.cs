using System.Net;
using System.Net.Sockets;

namespace ChatServices.DialogueService.Inference;

/// <summary>
/// Turns the configured InferenceService addresses into replica addresses: an IP literal is one replica; a host
/// name is resolved and each address it has is one replica (a Kubernetes headless Service resolves to every
/// ready pod). <see cref="RefreshAsync"/> re-resolves and updates the picker; run it periodically.
/// </summary>
public sealed class InferenceEndpointResolver(IReadOnlyList<Uri> configured, InferenceEndpointPicker picker)
{
    /// <summary>Resolves every configured address and hands the result to the picker.</summary>
    /// <returns>The replica addresses now in use.</returns>
    public async Task<IReadOnlyList<Uri>> RefreshAsync(CancellationToken cancellationToken)
    {
        var resolved = new List<Uri>();
        foreach (var uri in configured)
        {
            if (IPAddress.TryParse(uri.Host, out _))
            {
                resolved.Add(uri);
                continue;
            }
            IPAddress[] addresses;
            try
            {
                addresses = await Dns.GetHostAddressesAsync(uri.Host, cancellationToken);
            }
            catch (SocketException)
            {
                continue; // the name does not resolve right now (no ready pods): no replicas from it this round
            }
            foreach (var ip in addresses)
            {
                if (ip.AddressFamily is not (AddressFamily.InterNetwork or AddressFamily.InterNetworkV6)) continue;
                resolved.Add(new UriBuilder(uri) { Host = ip.ToString() }.Uri);
            }
        }

        // Keep the last known replicas when nothing resolves: a DNS hiccup must not take every replica away.
        if (resolved.Count > 0) picker.Update(resolved);
        return resolved;
    }
}
