#!/bin/sh
echo "worker running on $(cat /etc/shop-motd)"
