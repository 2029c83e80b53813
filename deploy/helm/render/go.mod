// Built in GOPATH mode against Debian's packaged sources (/usr/share/gocode), not
// downloaded: this file lets Go resolve sprig's "/v3" import path there
// (scripts/validate-deploy.sh builds it).
module capscope-deploy-tool

go 1.19
