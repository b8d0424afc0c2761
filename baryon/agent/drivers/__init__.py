"""The only code of the agents that touches a host: OVSDB (``ovsdb``, over ``jsonrpc``), OpenFlow
(``openflow``), netfilter (``netfilter``: iptables, ip6tables, ipset and conntrack over ctnetlink;
``ipset`` and ``conntrack`` only build and parse their text and messages), namespaces and veth pairs (``netns``: ``ip``,
``ethtool``, ``sysctl``; links read over ``netlink``), dnsmasq processes and files (``dnsmasq``)."""
