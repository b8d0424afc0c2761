"""The only code of the agents that touches a host: OVSDB (``ovsdb``, over ``jsonrpc``), OpenFlow
(``openflow``), netfilter (``netfilter``: iptables, ip6tables, ipset and conntrack; ``ipset`` and
``conntrack`` only build and parse their text), namespaces and veth pairs (``netns``: ``ip``,
``ethtool``, ``sysctl``; links read over ``netlink``), dnsmasq processes and files (``dnsmasq``)."""
