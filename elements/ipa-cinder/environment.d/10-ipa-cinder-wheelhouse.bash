# With a wheelhouse (DIB_IPA_CINDER_WHEELHOUSE, a directory of wheels on
# the build host), every pip call inside the image is served from the copy
# that extra-data.d put into the hooks directory, and from nothing else:
# ironic-python-agent-ramdisk's own install of IPA included. A build then
# reaches no package index from the chroot, and installs exactly the wheels
# it was given.
if [[ -n "${DIB_IPA_CINDER_WHEELHOUSE:-}" ]]; then
    export PIP_NO_INDEX=1
    export PIP_FIND_LINKS=/tmp/in_target.d/ipa-cinder-wheelhouse
fi
